import Foundation
import Synchronization
import XCTest

/// The live dashboard of a real `tributary local` run, loaded in headless Chromium
/// (`tools/dashboard_check.py` drives it over the DevTools protocol), and its `/metrics` parsed by
/// Prometheus' own Python parser (`tools/check_metrics.py`). `.ci/run` installs both; elsewhere
/// the test is skipped when they are missing, in CI it fails.
final class DashboardBrowserTests: XCTestCase {
    struct Check: Decodable {
        struct Snapshot: Decodable, Equatable {
            struct Member: Decodable, Equatable {
                var name: String
                var state: String
                var sent: String
                var loss: String
            }
            var members: [Member]
            var validationLoss: String
            var bytesSent: String
            var bytesReceived: String
            var round: String
            var ring: [String]
            var charts: Int
            var events: Int
            var updates: Int
            var connection: String
        }
        var snapshots: [Snapshot]
        var requests: [String]
        var firstTabStop: String
        var phoneOverflow: Bool
        var screenshots: [String]
    }

    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Skips where the browser or the Python modules are missing, unless this is CI.
    func requireBrowserTools() throws {
        let chromium = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
        let python = run("python3", ["-c", "import websocket, prometheus_client"])
        let missing = [FileManager.default.isExecutableFile(atPath: chromium) ? nil : "chromium (\(chromium))",
                       python.status == 0 ? nil : "python3 with websocket-client and prometheus_client"].compactMap { $0 }
        guard !missing.isEmpty else { return }
        let message = "missing \(missing.joined(separator: " and ")); tools/install-deps.sh installs them"
        if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
        throw XCTSkip(message)
    }

    /// Runs a program found on the PATH; a program that cannot start is exit status 127.
    func run(_ executable: String, _ arguments: [String]) -> CLIResult {
        (try? runProcess(URL(fileURLWithPath: "/usr/bin/env"), [executable] + arguments))
            ?? CLIResult(status: 127, stdout: "", stderr: "cannot start \(executable)")
    }

    /// Starts `tributary local` and returns it with its dashboard address (from its standard error).
    func startLocalRun(in dir: URL) throws -> (Process, URL) {
        let config = dir.appendingPathComponent("run.yaml")
        try """
            model: {vocabSize: 32, contextLength: 32, layers: 2, heads: 2, channels: 32}
            batchSize: 4
            sequenceLength: 32
            steps: 3000
            optimizer: {learningRate: 0.01, warmupSteps: 5}
            data: {markovVocabulary: 32, trainTokens: 60000, validationTokens: 4096}
            evaluation: {interval: 10, batches: 2}
            checkpoint: {interval: 0, keep: 1}
            strategy: {name: ddp, codec: fp32}
            """.write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = tributaryExecutable
        // A shaped link keeps the run going (each step waits for its all-reduce) while the browser looks.
        process.arguments = ["local", "--config", config.path, "--out", dir.appendingPathComponent("run").path,
                             "--workers", "3", "--speeds", "1,1,0.5", "--link", "20mbit,10ms"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let found = Mutex<URL?>(nil)
        let reader = Thread {
            var text = ""
            // `availableData` returns what is there; `read(upToCount:)` would wait for the whole count.
            while case let chunk = err.fileHandleForReading.availableData, !chunk.isEmpty {
                text += String(decoding: chunk, as: UTF8.self)
                if found.withLock({ $0 }) == nil, let range = text.range(of: #"https://127\.0\.0\.1:\d+/"#, options: .regularExpression) {
                    found.withLock { $0 = URL(string: String(text[range])) }
                }
            }
        }
        reader.start()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, process.isRunning, found.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.1) }
        let url = found.withLock { $0 }
        if url == nil { process.terminate() }
        return (process, try XCTUnwrap(url, "tributary local printed no dashboard address within 60 s"))
    }

    func testTheDashboardOfARunningLocalRunShowsItsMembersLossAndBytesAsTheyChange() throws {
        try requireBrowserTools()
        let dir = try temporaryDirectory()
        let (local, dashboard) = try startLocalRun(in: dir)
        // The page is served over TLS: the browser and the scraper trust the run's authority, and nothing else.
        let authority = dir.appendingPathComponent("run/run-ca.pem")
        defer {
            local.interrupt()
            local.waitUntilExit()
        }
        let output = ProcessInfo.processInfo.environment["TRIBUTARY_TEST_OUTPUT"].map { URL(fileURLWithPath: $0) }
            ?? repository.appendingPathComponent(".build/test-output/dashboard")
        let browser = run("python3", [repository.appendingPathComponent("tools/dashboard_check.py").path,
                                           dashboard.absoluteString, "--out", output.path, "--wait", "30", "--ca", authority.path])
        XCTAssertEqual(browser.status, 0, browser.stderr)
        let check = try JSONDecoder().decode(Check.self, from: Data(browser.stdout.utf8))
        print("dashboard screenshots: \(check.screenshots.joined(separator: ", "))")

        // The page, filled by its own script from the live events: members, a loss, byte counters.
        XCTAssertEqual(check.snapshots.count, 2)
        let (first, second) = (check.snapshots[0], check.snapshots[1])
        for snapshot in [first, second] {
            XCTAssertEqual(snapshot.members.map(\.name), ["worker-0", "worker-1", "worker-2"])
            XCTAssertEqual(snapshot.ring, ["worker-0", "worker-1", "worker-2"])
            XCTAssertTrue(snapshot.members.allSatisfy { $0.state == "active" && Double($0.loss) != nil }, "\(snapshot.members)")
            XCTAssertTrue(snapshot.bytesSent.hasSuffix("B") && snapshot.bytesSent != "0 B", snapshot.bytesSent)
            XCTAssertEqual(snapshot.charts, 4)
            XCTAssertGreaterThanOrEqual(snapshot.events, 4, "three joins and the start")
            XCTAssertEqual(snapshot.connection, "live")
        }
        // ... and they change between the two looks, without a reload.
        XCTAssertGreaterThan(second.updates, first.updates)
        XCTAssertNotEqual(second.bytesSent, first.bytesSent)
        XCTAssertNotEqual(second.members.map(\.sent), first.members.map(\.sent))
        XCTAssertNotEqual(second.round, first.round)
        XCTAssertNotNil(Double(second.validationLoss), "validation every 10 steps: \(second.validationLoss)")

        // Offline: everything the page loaded came from the coordinator (anything else would have failed).
        XCTAssertFalse(check.requests.isEmpty)
        for request in check.requests { XCTAssertTrue(request.hasPrefix(dashboard.absoluteString), "the page loaded \(request)") }
        // By keyboard: the first Tab stop skips to the members; on a phone the page does not scroll sideways.
        XCTAssertTrue(check.firstTabStop.hasPrefix("skip "), check.firstTabStop)
        XCTAssertFalse(check.phoneOverflow)
        for shot in check.screenshots { XCTAssertGreaterThan((try? Data(contentsOf: URL(fileURLWithPath: shot)).count) ?? 0, 10_000) }

        // /metrics of the same run, through Prometheus' parser.
        let metrics = run("python3", [repository.appendingPathComponent("tools/check_metrics.py").path,
                                           dashboard.appendingPathComponent("metrics").absoluteString, "--ca", authority.path])
        XCTAssertEqual(metrics.status, 0, metrics.stderr)
        XCTAssertTrue(metrics.stdout.contains(#"tributary_bytes_sent_total{worker=\"worker-2\"}"#), metrics.stdout)
        XCTAssertTrue(metrics.stdout.contains(#"tributary_round_duration_seconds_count{worker=\"worker-0\"}"#), metrics.stdout)
    }
}
