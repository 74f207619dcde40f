import Coordination
import Foundation
import Synchronization
import Training

/// The run folder of a multi-worker run, written by the coordinator: `config.yaml`,
/// `metrics.jsonl` (every worker's round reports with the time they arrived, one JSON object per
/// line), `events.jsonl` (the run's events) and `loss.svg` (training loss of the first worker by
/// name, and validation loss of the shared model). A restarted coordinator appends to them.
public final class ClusterRunFolder: Sendable {
    public let url: URL
    private struct State {
        var metrics: FileHandle
        var events: FileHandle
        var curve: LossCurveFile
    }
    private let state: Mutex<State>
    /// Creates the folder and writes the resolved config.
    public init(url: URL, config: TrainConfig) throws {
        self.url = url
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try config.yaml().write(to: url.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            let metrics = try Self.appending(to: url.appendingPathComponent(RunHistory.reportsFile))
            let events = try Self.appending(to: url.appendingPathComponent(RunHistory.eventsFile))
            state = Mutex(State(metrics: metrics, events: events,
                                curve: LossCurveFile(folder: url, plot: LossPlot(title: "loss: \(url.lastPathComponent)"))))
        } catch {
            throw TrainingError.runDirectory(path: url.path, reason: error.localizedDescription)
        }
    }

    /// A handle that appends to `file`: a resumed run appends, earlier lines are saved work too.
    private static func appending(to file: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: file.path) {
            guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
            }
        }
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        return handle
    }

    /// Appends a report; those of the first worker by name also go into the loss curve
    /// (validation loss is the same on every worker).
    public func append(_ record: RecordedReport, positionByName: Int) {
        guard let line = Self.line(record) else { return }
        let report = record.report
        state.withLock { s in
            try? s.metrics.write(contentsOf: line)
            if positionByName == 0 {
                try? s.curve.add(step: report.steps, loss: Float(report.loss), validationLoss: report.validationLoss.map(Float.init),
                                 final: report.finished)
            }
        }
    }

    static let coordinatorStateFile = "coordinator-state.json"

    /// Replaces the coordinator's saved state (atomically; readable by its owner only: it holds
    /// the members' credentials).
    public func save(_ state: CoordinatorState.Saved) {
        guard let data = try? JSONEncoder().encode(state) else { return }
        let file = url.appendingPathComponent(Self.coordinatorStateFile)
        self.state.withLock { _ in
            try? data.write(to: file, options: .atomic)
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        }
    }

    /// The coordinator state saved in run folder `folder`, if any.
    public static func savedCoordinatorState(in folder: URL) throws -> CoordinatorState.Saved? {
        let file = folder.appendingPathComponent(coordinatorStateFile)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        guard data.count < 64 << 20, let saved = try? JSONDecoder().decode(CoordinatorState.Saved.self, from: data) else {
            throw TrainingError.runDirectory(path: file.path, reason: "the coordinator's saved state is damaged; move it away to start the run's coordinator afresh")
        }
        return saved
    }

    /// Appends an event to `events.jsonl`.
    public func append(_ event: RunEvent) {
        guard let line = Self.line(event) else { return }
        state.withLock { s in try? s.events.write(contentsOf: line) }
    }

    private static func line(_ value: some Encodable) -> Data? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(value) else { return nil }
        line.append(0x0A)
        return line
    }
}
