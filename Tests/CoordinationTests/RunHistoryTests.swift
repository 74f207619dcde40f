import Coordination
import Foundation
import XCTest

/// A run's history as the run folder keeps it and a restarted coordinator reads it back.
final class RunHistoryTests: XCTestCase {
    func report(_ name: String, round: Int) -> WorkerReport {
        WorkerReport(name: name, round: round, rounds: 10, steps: round + 1, tokens: 100 * (round + 1), loss: 3, validationLoss: nil,
                     bytesSent: 10, bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: Double(round + 1),
                     tokensPerComputeSecond: 100, finished: false)
    }

    func testAFolderReadsBackWhatWasWrittenAndSkipsWhatIsNotARecord() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let encoder = JSONEncoder()
        let recorded = RecordedReport(report: report("a", round: 0), receivedAt: 1_800_000_000)
        let old = report("b", round: 0)  // a line of a run folder written before reports carried their arrival
        var reports = try encoder.encode(recorded) + Data("\n".utf8) + encoder.encode(old) + Data("\n".utf8)
        reports += Data("{\"truncated\": \n".utf8) + Data(String(repeating: "x", count: RunHistory.maxLineBytes + 1).utf8) + Data("\n".utf8)
        try reports.write(to: folder.appendingPathComponent(RunHistory.reportsFile))
        let event = RunEvent(time: 1_800_000_001, kind: .lost, worker: "b", epoch: 3, round: 0, detail: "no heartbeat for over 6 s")
        try (encoder.encode(event) + Data("\nnot json\n".utf8)).write(to: folder.appendingPathComponent(RunHistory.eventsFile))

        let (history, skipped) = try RunHistory.load(folder: folder)
        XCTAssertEqual(skipped, 3, "the truncated line, the over-long line and the line that is not JSON")
        XCTAssertEqual(history.reports, [recorded, RecordedReport(report: old, receivedAt: nil)])
        XCTAssertEqual(history.events, [event])
        XCTAssertEqual(history.workerNames, ["a", "b"])

        // The arrival time sits beside the report's own keys: readers of plain reports still read the line.
        let line = try JSONSerialization.jsonObject(with: encoder.encode(recorded)) as? [String: Any]
        XCTAssertEqual(line?["receivedAt"] as? Double, 1_800_000_000)
        XCTAssertEqual(line?["name"] as? String, "a")
        XCTAssertEqual(try JSONDecoder().decode(WorkerReport.self, from: encoder.encode(recorded)), recorded.report)
    }

    func testALongRunKeepsItsWholeCurveAtACoarserGrain() {
        var history = RunHistory()
        for round in 0..<(RunHistory.maxReports + 1) { history.append(RecordedReport(report: report("a", round: round), receivedAt: nil)) }
        XCTAssertLessThanOrEqual(history.reports.count, RunHistory.maxReports)
        XCTAssertGreaterThan(history.reports.count, RunHistory.maxReports * 2 / 3)
        XCTAssertEqual(history.reports.first?.report.round, 0, "the beginning is kept")
        XCTAssertEqual(history.reports.last?.report.round, RunHistory.maxReports, "and the newest")
        let rounds = history.reports.map(\.report.round)
        XCTAssertEqual(rounds, rounds.sorted(), "in order")
    }
}
