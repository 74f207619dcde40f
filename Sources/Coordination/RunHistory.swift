import Foundation

/// What a run did so far: every worker's round reports and the run's events, in Unix time. The
/// coordinator keeps one in memory for its dashboard and appends the same records to the run
/// folder (`metrics.jsonl`, `events.jsonl`), from which a restarted coordinator and
/// `tributary report` read it back.
public struct RunHistory: Sendable, Equatable {
    public private(set) var reports: [RecordedReport] = []
    public private(set) var events: [RunEvent] = []

    /// Records kept at most; past these the older half is thinned to every other record, so that
    /// a long run keeps its whole curve at a coarser grain instead of losing its beginning.
    public static let maxReports = 20_000
    public static let maxEvents = 5_000
    /// Longest line read from a run folder's files: longer ones are not records of ours.
    public static let maxLineBytes = 64 << 10

    public static let reportsFile = "metrics.jsonl"
    public static let eventsFile = "events.jsonl"

    public init() {}

    public mutating func append(_ report: RecordedReport) {
        reports.append(report)
        if reports.count > Self.maxReports { Self.thin(&reports) }
    }

    public mutating func append(_ event: RunEvent) {
        events.append(event)
        if events.count > Self.maxEvents { Self.thin(&events) }
    }

    private static func thin<T>(_ records: inout [T]) {
        let half = records.count / 2
        records = records[..<half].enumerated().filter { $0.offset % 2 == 0 }.map(\.element) + records[half...]
    }

    /// The history saved in run folder `folder`, and how many lines were skipped as not ours
    /// (damaged, too long, or of another format). A folder without the files has an empty history.
    public static func load(folder: URL) throws -> (history: RunHistory, skippedLines: Int) {
        var history = RunHistory()
        var skipped = 0
        let decoder = JSONDecoder()
        skipped += try forEachLine(of: folder.appendingPathComponent(reportsFile)) { line in
            guard let record = try? decoder.decode(RecordedReport.self, from: line) else { return false }
            history.append(record)
            return true
        }
        skipped += try forEachLine(of: folder.appendingPathComponent(eventsFile)) { line in
            guard let event = try? decoder.decode(RunEvent.self, from: line) else { return false }
            history.append(event)
            return true
        }
        return (history, skipped)
    }

    /// Calls `body` with every non-empty line of `url` up to `maxLineBytes`; returns the count of
    /// lines skipped (too long, or `body` said no).
    private static func forEachLine(of url: URL, _ body: (Data) -> Bool) throws -> Int {
        guard FileManager.default.fileExists(atPath: url.path) else { return 0 }
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw RunHistoryError(path: url.path, reason: error.localizedDescription)
        }
        var skipped = 0
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            if line.count > maxLineBytes || !body(Data(line)) { skipped += 1 }
        }
        return skipped
    }

    /// Every worker's name, in the order the ring orders them (by name).
    public var workerNames: [String] { Set(reports.map(\.report.name)).sorted() }

    /// The newest report of each worker, by name.
    public var latestReports: [String: WorkerReport] {
        var latest: [String: WorkerReport] = [:]
        for r in reports { latest[r.report.name] = r.report }
        return latest
    }
}

/// A run folder's history could not be read.
public struct RunHistoryError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot read \(path): \(reason)" }
}
