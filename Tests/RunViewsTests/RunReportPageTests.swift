import Coordination
import Foundation
import RunViews
import XCTest

/// `tributary report`'s pages and the Markdown they are written from.
final class RunReportPageTests: XCTestCase {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func lines(_ values: [some Encodable]) throws -> Data {
        let encoder = JSONEncoder()
        return try values.reduce(into: Data()) { $0 += try encoder.encode($1) + Data("\n".utf8) }
    }

    /// Nothing the page loads comes from elsewhere: it works offline and as a file.
    func assertSelfContained(_ html: String, file: StaticString = #filePath, line: UInt = #line) {
        for external in ["src=", "<link", "@import", "url("] {
            XCTAssertFalse(html.contains(external), "a report page loads nothing, but it has \(external)", file: file, line: line)
        }
    }

    func testAClusterRunsPageHasItsChartsWorkersAndEvents() throws {
        let run = try folder()
        var records: [RecordedReport] = []
        for round in 0..<4 {
            for (i, name) in ["w0", "w1"].enumerated() {
                var r = WorkerReport(name: name, round: round, rounds: 4, steps: 10 * (round + 1), tokens: 640 * (round + 1),
                                     loss: 3 - 0.2 * Double(round), validationLoss: round % 2 == 1 ? 2.9 - 0.1 * Double(round) : nil,
                                     bytesSent: 1_000_000 * (round + 1), bytesReceived: 1_000_000 * (round + 1),
                                     computeSeconds: 1.5 * Double(round + 1), waitSeconds: 0.5 * Double(round + 1),
                                     elapsedSeconds: 2 * Double(round + 1), tokensPerComputeSecond: 426, finished: round == 3)
                r.linkBytesPerSecond = 12_500_000
                records.append(RecordedReport(report: r, receivedAt: 1_800_000_000 + 2 * Double(round + 1) + Double(i) * 0.01))
            }
        }
        try lines(records).write(to: run.appendingPathComponent(RunHistory.reportsFile))
        let events = [RunEvent(time: 1_800_000_000, kind: .trainingStarted, worker: nil, epoch: 2, round: nil, detail: "2 workers: w0, w1"),
                      RunEvent(time: 1_800_000_005, kind: .lost, worker: "w1", epoch: 3, round: 1, detail: "no heartbeat for <6> s")]
        try lines(events).write(to: run.appendingPathComponent(RunHistory.eventsFile))
        try "steps: 40\n".write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)

        let html = try RunReportPage.render(folder: run)
        assertSelfContained(html)
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 4, "loss, throughput, bytes, utilisation")
        XCTAssertTrue(html.contains("link 100 Mbit/s"), "the bytes are drawn against the link")
        XCTAssertTrue(html.contains("<td>w1</td><td>finished</td>"), html)
        XCTAssertTrue(html.contains("<dd>2.6000</dd>"), "the last validation loss")
        XCTAssertTrue(html.contains("<td>2027-01-15T08:00:05Z</td><td>lost</td><td>w1</td><td>2</td><td>no heartbeat for &lt;6&gt; s</td>"), html)
        XCTAssertTrue(html.contains("<pre>steps: 40\n</pre>"))
    }

    func testATrainRunsPageAndAnExperimentsPage() throws {
        let train = try folder()
        let steps = (1...5).map { #"{"step":\#($0),"totalSteps":5,"loss":\#(4.0 - Double($0) * 0.1),"learningRate":0.01,"gradientNorm":1,"tokensPerSecond":900,"elapsedSeconds":\#($0),"etaSeconds":1}"# }
        try (steps.joined(separator: "\n") + "\n").write(to: train.appendingPathComponent(RunHistory.reportsFile), atomically: true, encoding: .utf8)
        let trainPage = try RunReportPage.render(folder: train)
        XCTAssertEqual(trainPage.components(separatedBy: "<svg").count - 1, 2)
        XCTAssertTrue(trainPage.contains("<dd>3.5000</dd>"), "the last training loss")

        let experiment = try folder()
        try "# Gap <by> workers\n\nSee `gap.svg` and **this**.\n\n| M | gap |\n|---|---|\n| 2 | +1.0% |\n\n- one\n- two\n"
            .write(to: experiment.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
        try "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>gap</text></svg>\n"
            .write(to: experiment.appendingPathComponent("gap.svg"), atomically: true, encoding: .utf8)
        let page = try RunReportPage.render(folder: experiment)
        XCTAssertTrue(page.contains("<h2>Gap &lt;by&gt; workers</h2>"), "under the page's own title: \(page)")
        XCTAssertTrue(page.contains("<p>See <code>gap.svg</code> and <strong>this</strong>.</p>"), page)
        XCTAssertTrue(page.contains("<thead><tr><th scope=\"col\">M</th><th scope=\"col\">gap</th></tr></thead>\n<tbody>\n<tr><td>2</td><td>+1.0%</td></tr>"), page)
        XCTAssertTrue(page.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"), page)
        XCTAssertTrue(page.contains("<figure tabindex=\"0\" aria-label=\"gap.svg\"><svg xmlns"), "the plot inline, without its XML prolog")

        XCTAssertThrowsError(try RunReportPage.render(folder: try folder())) { error in
            XCTAssertTrue("\(error)".contains("no run here"), "\(error)")
        }
    }

    func testMarkdownEscapesWhatItDoesNotKnow() {
        let html = MarkdownHTML.render("<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.org) `a<b`\n\n```\n<b>\n```\n")
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertFalse(html.contains("href=\"javascript"))
        XCTAssertTrue(html.contains("<a href=\"https://example.org\">ok</a>"), html)
        XCTAssertTrue(html.contains("<code>a&lt;b</code>"), html)
        XCTAssertTrue(html.contains("<pre><code>&lt;b&gt;</code></pre>"), html)
    }
}
