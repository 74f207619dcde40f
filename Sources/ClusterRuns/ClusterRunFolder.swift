import Coordination
import Foundation
import Synchronization
import Training

/// The run folder of a multi-worker run, written by the coordinator: `config.yaml`,
/// `metrics.jsonl` (every worker's round reports, one JSON object per line) and `loss.svg`
/// (training loss of the first worker by name, and validation loss of the shared model).
public final class ClusterRunFolder: Sendable {
    public let url: URL
    private struct State {
        var metrics: FileHandle
        var curve: LossCurveFile
    }
    private let state: Mutex<State>
    /// Creates the folder and writes the resolved config.
    public init(url: URL, config: TrainConfig) throws {
        self.url = url
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try config.yaml().write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            let metricsURL = url.appendingPathComponent("metrics.jsonl")
            // A resumed run appends: earlier reports are saved work too.
            if !FileManager.default.fileExists(atPath: metricsURL.path) {
                guard FileManager.default.createFile(atPath: metricsURL.path, contents: nil) else {
                    throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: metricsURL.path])
                }
            }
            let metrics = try FileHandle(forWritingTo: metricsURL)
            try metrics.seekToEnd()
            state = Mutex(State(metrics: metrics, curve: LossCurveFile(folder: url, plot: LossPlot(title: "loss: \(url.lastPathComponent)"))))
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Appends a report; those of the first worker by name also go into the loss curve
    /// (validation loss is the same on every worker).
    public func append(_ report: WorkerReport, positionByName: Int) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(report) else { return }
        line.append(0x0A)
        state.withLock { s in
            try? s.metrics.write(contentsOf: line)
            if positionByName == 0 {
                try? s.curve.add(step: report.steps, loss: Float(report.loss), validationLoss: report.validationLoss.map(Float.init),
                                 final: report.finished)
            }
        }
    }
}
