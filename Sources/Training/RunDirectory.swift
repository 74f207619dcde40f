import Foundation

/// A training run's folder: the resolved config and one JSON line of metrics per step.
public final class RunDirectory {
    /// The folder.
    public let url: URL
    private let metrics: FileHandle
    private let encoder: JSONEncoder
    private var curve: LossCurveFile

    /// Creates `url` (and parents), writes `config.yaml`, and opens `metrics.jsonl` for appending.
    ///
    /// When `resumingAfter` is a step, the existing metrics are kept up to that step (later lines,
    /// from steps the checkpoint does not cover, are dropped because they will be run again).
    public init(url: URL, config: TrainConfig, resumingAfter resumedStep: Int? = nil) throws {
        self.url = url
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
            try config.yaml().write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            let metricsURL = url.appendingPathComponent("metrics.jsonl")
            var kept = Data()
            var restored = LossPlot(title: "loss: \(url.lastPathComponent)")
            if let resumedStep, let old = try? Data(contentsOf: metricsURL) {
                for line in old.split(separator: 0x0A) {
                    guard let report = try? JSONDecoder().decode(StepReport.self, from: Data(line)), report.step <= resumedStep else { continue }
                    kept.append(contentsOf: line)
                    kept.append(0x0A)
                    restored.add(report)
                }
            }
            curve = LossCurveFile(folder: url, plot: restored)
            guard fm.createFile(atPath: metricsURL.path, contents: kept) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: metricsURL.path])
            }
            metrics = try FileHandle(forWritingTo: metricsURL)
            try metrics.seekToEnd()
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

    /// Appends one step's metrics as a JSON line, and redraws `loss.svg` when validation loss was
    /// measured, at the last step, and at most every 5 seconds otherwise.
    public func append(_ report: StepReport) throws {
        do {
            var line = try encoder.encode(report)
            line.append(0x0A)
            try metrics.write(contentsOf: line)
            try curve.add(step: report.step, loss: report.loss, validationLoss: report.validationLoss, final: report.step == report.totalSteps)
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: "metrics: \(error.localizedDescription)")
        }
    }
}
