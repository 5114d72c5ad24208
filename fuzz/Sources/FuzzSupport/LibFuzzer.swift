import CLibFuzzer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs libFuzzer on `testOneInput` with this process's arguments and exits with its status.
///
/// SwiftPM links a Swift executable with its entry point renamed (`<Module>_main`, aliased to
/// `main` by the linker so tests can import executables), which hides libFuzzer's own `main`
/// and fails the link outright under `-parse-as-library`. So each fuzzer is a `main.swift` that
/// hands control to libFuzzer explicitly (compiler-rt `FuzzerInterface.h`, `LLVMFuzzerRunDriver`).
public func runLibFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}
