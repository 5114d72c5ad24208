import SextantPipeline

/// `file_storage` extension (OTel's `filestorage`): a directory for exporters' persistent sending
/// queues (`sending_queue::storage: file_storage/NAME`). The queues themselves are `DurableQueue`s in
/// SextantPipeline; this factory only reads the config.
public struct FileStorageExtensionFactory: ExtensionFactory {
    public init() {}
    public let type = "file_storage"
    public let summary = "directory for persistent exporter queues (write-ahead logs; sending_queue::storage)"

    struct Config: ComponentConfig {
        var settings: FileStorage.Settings
    }

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        let directory = r.optionalString("directory") ?? ""
        if directory.isEmpty { r.error("directory", "\(r.qualified("directory")) is required (where the queues are kept)") }
        var s = FileStorage.Settings(directory: directory)
        s.fsync = r.bool("fsync", default: s.fsync)
        s.maxSize = r.byteSize("max_size", default: s.maxSize, min: 64 << 10)
        return Config(settings: s)
    }

    public func makeExtension(_ settings: ComponentSettings, config: any ComponentConfig) throws -> any Component {
        FileStorage((config as! Config).settings, logger: settings.logger)
    }
}
