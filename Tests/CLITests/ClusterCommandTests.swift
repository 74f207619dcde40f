import Coordination
import CoordinationClient
import Foundation
import RunTrust
import XCTest

/// `tributary coordinator` and `tributary worker` as separate processes, as on several machines.
final class ClusterCommandTests: XCTestCase {
    func testCoordinatorAndWorkersTrainAndRefuseWhatIsWrong() async throws {
        let dir = try temporaryDirectory()
        let (coordinator, address, token, config, run) = try startCoordinator(in: dir, steps: 20, evaluationInterval: 10)
        let wrong = dir.appendingPathComponent("wrong")
        try "guess\n".write(to: wrong, atomically: true, encoding: .utf8)

        let refused = try runTributary(["worker", "--join", address, "--token-file", wrong.path, "--name", "intruder"] + trusting(run))
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("wrong token"), refused.stderr)

        let busy = try runTributary(["coordinator", "--listen", address, "--token-file", token.path, "--config", config.path,
                                     "--workers", "2", "--out", dir.appendingPathComponent("other").path])
        XCTAssertEqual(busy.status, 1)
        XCTAssertTrue(busy.stderr.contains("already in use"), busy.stderr)
        XCTAssertEqual(busy.stderr.split(separator: "\n").count, 1, "a port in use is a one-line error: \(busy.stderr)")

        // A worker that trusts another authority, or none, is told why it cannot talk to the coordinator.
        let stranger = try runTributary(["worker", "--join", address, "--token-file", token.path, "--name", "stranger",
                                         "--ca-hash", "sha256:" + String(repeating: "0", count: 64)])
        XCTAssertEqual(stranger.status, 1)
        XCTAssertTrue(stranger.stderr.contains("not sha256:000"), stranger.stderr)
        let plain = try runTributary(["worker", "--join", address, "--token-file", token.path, "--name", "plain", "--insecure"])
        XCTAssertEqual(plain.status, 1)
        XCTAssertTrue(plain.stderr.contains("give --ca FILE or --ca-hash HASH"), plain.stderr)

        // Two real workers train to the end over TLS, one trusting the authority's file, one its
        // fingerprint as the coordinator printed it; the coordinator then exits by itself.
        let authority = try String(contentsOf: run.appendingPathComponent(RunAuthority.certificateFile), encoding: .utf8)
        let trust = [trusting(run), ["--ca-hash", try CoordinatorTrust.fingerprint(ofPEM: authority)]]
        let workers = try (0..<2).map { i in
            try start(["worker", "--join", address, "--token-file", token.path, "--name", "w\(i)", "--out", run.path] + trust[i]).0
        }
        for w in workers { w.waitUntilExit() }
        XCTAssertEqual(workers.map(\.terminationStatus), [0, 0])
        coordinator.waitUntilExit()
        XCTAssertEqual(coordinator.terminationStatus, 0)
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 4, "two rounds from each of two workers")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("loss.svg").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-00000020/model.safetensors").path))
        let page = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(page.contains("<td>w1</td><td>finished</td>"), "the finished run's page is written beside it")

        // A coordinator started again on the run folder shows the run as it was: its reports, its
        // events, and that it restarted; the folder's lines are not written twice.
        let events = try String(contentsOf: run.appendingPathComponent("events.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(events.filter { $0.contains("\"kind\":\"joined\"") }.count, 2, "\(events)")
        XCTAssertEqual(events.filter { $0.contains("\"kind\":\"finished\"") }.count, 1, "\(events)")
        let (again, output) = try start(["coordinator", "--listen", "127.0.0.1:0", "--token-file", token.path, "--config", config.path,
                                         "--workers", "2", "--out", run.path])
        let banner = try line(containing: "coordinator on", from: output)
        let port = try XCTUnwrap(banner.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }?.split(separator: ":").last
            .flatMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) })
        let snapshot = try JSONDecoder().decode(DashboardView.self, from: Data(
            try await CoordinatorClient(host: "127.0.0.1", port: port, trust: CoordinatorTrust(authorityPEM: authority))
                .text("/v1/dashboard").utf8))
        again.terminate()
        XCTAssertEqual(snapshot.phase, "waiting", "nobody has joined the new coordinator yet")
        XCTAssertEqual(snapshot.events.map(\.kind).first, .coordinatorRestarted)
        XCTAssertEqual(snapshot.events.filter { $0.kind == .joined }.count, 2, "the earlier joins are on the page")
        XCTAssertTrue(snapshot.charts["loss"]?.contains("w0 train") == true, "the earlier loss curves too")
        let after = try String(contentsOf: run.appendingPathComponent("events.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(after.count, events.count + 1, "only the restart was added")
        XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").count, 4)
    }

    /// Issue 17: the coordinator was a single point of failure. Killed mid-run (SIGKILL) and
    /// started again with the same command line, it takes back its saved state (run id, members,
    /// credentials); the workers, which kept training and retried their reports, finish the run,
    /// and every worker's every round is in metrics.jsonl exactly once.
    func testACoordinatorKilledMidRunAndRestartedWithTheSameCommandLetsTheRunFinish() throws {
        let dir = try temporaryDirectory()
        let (coordinator, address, token, config, run) = try startCoordinator(in: dir, steps: 200, evaluationInterval: 0)
        let workers = try (0..<2).map { i in
            try start(["worker", "--join", address, "--token-file", token.path, "--name", "w\(i)", "--out", run.path, "--speed", "0.1"]
                      + trusting(run),
                      errorLog: dir.appendingPathComponent("w\(i).log")).0
        }
        func lines() -> [String] {
            ((try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, lines().count < 4 { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThanOrEqual(lines().count, 4, "two rounds of each worker before the kill")
        kill(coordinator.processIdentifier, SIGKILL)
        coordinator.waitUntilExit()
        Thread.sleep(forTimeInterval: 1.5)
        let (again, output) = try start(["coordinator", "--listen", address, "--token-file", token.path, "--config", config.path,
                                         "--workers", "2", "--out", run.path])
        _ = try line(containing: "coordinator on", from: output)
        for w in workers { w.waitUntilExit() }
        XCTAssertEqual(workers.map(\.terminationStatus), [0, 0],
                       (try? String(contentsOf: dir.appendingPathComponent("w0.log"), encoding: .utf8)) ?? "")
        again.waitUntilExit()
        XCTAssertEqual(again.terminationStatus, 0, "the restarted coordinator saw the run finish")
        struct Line: Decodable { var name: String; var round: Int }
        let rounds = try lines().map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        for name in ["w0", "w1"] {
            XCTAssertEqual(rounds.filter { $0.name == name }.map(\.round), Array(0..<20), "\(name): every round once, none lost")
        }
    }

    /// The parts of `/v1/dashboard` the restart check reads.
    struct DashboardView: Decodable {
        var phase: String
        var events: [RunEvent]
        var charts: [String: String]
    }

    /// A third worker joins a run that two are training: the coordinator admits it, the two take
    /// it in at their next round's end (it starts from their model and optimizer state), and all
    /// three finish the run in agreement.
    func testAWorkerJoiningARunningRingIsTakenIn() throws {
        let dir = try temporaryDirectory()
        let (coordinator, address, token, _, run) = try startCoordinator(in: dir, steps: 1000, evaluationInterval: 0,
                                                                         flags: ["--heartbeat-timeout", "3"])
        func worker(_ name: String) throws -> Process {
            try start(["worker", "--join", address, "--token-file", token.path, "--name", name, "--out", run.path, "--speed", "0.05"]
                      + trusting(run),
                      errorLog: dir.appendingPathComponent("\(name).log")).0
        }
        var workers = [try worker("w0"), try worker("w1")]
        struct Report: Decodable { var name: String; var round: Int; var epoch: Int?; var parameterHash: String? }
        func reports() -> [Report] {
            ((try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "").split(separator: "\n")
                .compactMap { try? JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (reports().map(\.round).max() ?? -1) < 2 { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertLessThan(reports().map(\.round).max() ?? 99, 50, "the run should still be going")
        workers.append(try worker("w2"))
        for w in workers { w.waitUntilExit() }
        XCTAssertEqual(workers.map(\.terminationStatus), [0, 0, 0])
        coordinator.waitUntilExit()
        XCTAssertEqual(coordinator.terminationStatus, 0)

        let all = reports()
        let last = try XCTUnwrap(all.compactMap(\.epoch).max())
        let final = all.filter { $0.epoch == last }
        XCTAssertEqual(Set(final.map(\.name)), ["w0", "w1", "w2"], "the newcomer trains in the last ring")
        XCTAssertEqual(final.map(\.round).max(), 99)
        // The coordinator told the newcomer the run's round and which member's state it takes.
        let log = try String(contentsOf: dir.appendingPathComponent("w2.log"), encoding: .utf8)
        XCTAssertNotNil(log.range(of: #"the run is training \(round \d+\): this worker takes its state from w[01] at 127\.0\.0\.1:\d+"#,
                                  options: .regularExpression), log)
        // It took the model and optimizer state straight from that member, not around the ring.
        XCTAssertNotNil(log.range(of: #"took the state of rank \d \('w[01]'\): [0-9.]+ MB in [0-9.]+ s"#, options: .regularExpression), log)
        for (round, group) in Dictionary(grouping: final, by: \.round) {
            XCTAssertEqual(group.count, 3, "round \(round)")
            XCTAssertEqual(Set(group.compactMap(\.parameterHash)).count, 1, "round \(round): the three disagree")
        }
    }
}

