#!/bin/sh
# Regenerates the throwaway test PKI (valid for 100 years): a CA, a server certificate for
# localhost/127.0.0.1, a client certificate, and an unrelated CA with its own client certificate.
# Usage: sh Tests/SextantSecurityTests/Fixtures/generate.sh   (from anywhere; needs the openssl CLI)
set -eu
cd "$(dirname "$0")"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name subject
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days -out "$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name ca subject extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days $days -out "$1.crt" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext" "$2.srl"
}
ca ca "sextant test CA"
ca other-ca "unrelated test CA"
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client ca "test client" "extendedKeyUsage=clientAuth"
leaf other-client other-ca "stranger" "extendedKeyUsage=clientAuth"
rm -f other-ca.key ca.key
