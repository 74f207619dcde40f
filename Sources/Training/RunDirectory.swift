import Foundation

/// A training run's folder: the resolved config and one JSON line of metrics per step.
public final class RunDirectory {
    /// The folder.
    public let url: URL
    private let metrics: FileHandle
    private let encoder: JSONEncoder

    /// Creates `url` (and parents), writes `config.yaml`, and opens `metrics.jsonl` for appending.
    public init(url: URL, config: TrainConfig) throws {
        self.url = url
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
            try config.yaml().write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            let metricsURL = url.appendingPathComponent("metrics.jsonl")
            guard fm.createFile(atPath: metricsURL.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: metricsURL.path])
            }
            metrics = try FileHandle(forWritingTo: metricsURL)
            try metrics.truncate(atOffset: 0)
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: error.localizedDescription)
        }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    deinit { try? metrics.close() }

    /// A new folder under `parent` named after the current UTC time, e.g. `train-20261125-171502`.
    public static func timestampedURL(under parent: URL, prefix: String) -> URL {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        var url = parent.appendingPathComponent("\(prefix)-\(formatter.string(from: Date()))")
        var n = 2
        while FileManager.default.fileExists(atPath: url.path) {
            url = parent.appendingPathComponent("\(prefix)-\(formatter.string(from: Date()))-\(n)")
            n += 1
        }
        return url
    }

    /// Appends one step's metrics as a JSON line.
    public func append(_ report: StepReport) throws {
        do {
            var line = try encoder.encode(report)
            line.append(0x0A)
            try metrics.write(contentsOf: line)
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: "metrics.jsonl: \(error.localizedDescription)")
        }
    }
}
