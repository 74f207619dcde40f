import Coordination
import Foundation
import Synchronization
import Training

/// The run folder of a multi-worker run, written by the coordinator: `config.yaml`,
/// `metrics.jsonl` (every worker's round reports, one JSON object per line) and `loss.svg`
/// (training loss of the first worker per step and validation loss of the shared model).
public final class ClusterRunFolder: Sendable {
    public let url: URL
    private struct State {
        var metrics: FileHandle
        var plot: LossPlot
        var plotted = Date.distantPast
    }
    private let state: Mutex<State>
    private let plottedWorker: String

    /// Creates the folder and writes the resolved config; `plottedWorker` is whose training loss
    /// the curve shows (validation loss is the same on every worker).
    public init(url: URL, config: TrainConfig, plottedWorker: String) throws {
        self.url = url
        self.plottedWorker = plottedWorker
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try config.yaml().write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            let metricsURL = url.appendingPathComponent("metrics.jsonl")
            guard FileManager.default.createFile(atPath: metricsURL.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: metricsURL.path])
            }
            state = Mutex(State(metrics: try FileHandle(forWritingTo: metricsURL), plot: LossPlot(title: "loss: \(url.lastPathComponent)")))
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Appends a report; redraws the curve on validation points and at most every 5 seconds.
    public func append(_ report: WorkerReport) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(report) else { return }
        line.append(0x0A)
        state.withLock { s in
            try? s.metrics.write(contentsOf: line)
            if report.name == plottedWorker {
                s.plot.train.append((report.steps, Float(report.loss)))
                if let v = report.validationLoss { s.plot.validation.append((report.steps, Float(v))) }
            }
            if report.validationLoss != nil || report.finished || Date().timeIntervalSince(s.plotted) > 5 {
                try? Data(s.plot.svg().utf8).write(to: url.appendingPathComponent("loss.svg"), options: .atomic)
                s.plotted = Date()
            }
        }
    }
}
