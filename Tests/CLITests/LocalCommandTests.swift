import Foundation
import Wire
import XCTest

/// Multi-process runs on loopback: a coordinator and worker processes started by `tributary local`.
final class LocalCommandTests: XCTestCase {
    struct Report: Decodable {
        var name: String
        var round: Int
        var loss: Double
        var validationLoss: Double?
        var bytesSent: Int
        var waitSeconds: Double
        var computeSeconds: Double
        var elapsedSeconds: Double
        var steps: Int
        var parameterHash: String?
        var epoch: Int?
    }
    struct Summary: Decodable {
        struct Worker: Decodable {
            var name: String
            var steps: Int
            var tokens: Int
            var bytesSent: Int
            var waitSeconds: Double
            var computeSeconds: Double
        }
        var workers: [Worker]
        var validationLoss: Double?
        var bytesSent: Int
    }

    /// A small Markov-source run config.
    func writeConfig(in dir: URL, steps: Int, batch: Int = 4, channels: Int = 32, checkpoint: String = "{interval: 0, keep: 1}",
                     extra: String = "") throws -> String {
        let url = dir.appendingPathComponent("run.yaml")
        try """
            model: {vocabSize: 32, contextLength: 32, layers: 2, heads: 2, channels: \(channels)}
            batchSize: \(batch)
            sequenceLength: 32
            steps: \(steps)
            optimizer: {learningRate: 0.01, warmupSteps: 5}
            data: {markovVocabulary: 32, trainTokens: 60000, validationTokens: 4096}
            evaluation: {interval: 0, batches: 3}
            checkpoint: \(checkpoint)
            \(extra)
            """.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func runLocal(_ arguments: [String], in dir: URL) throws -> (Summary, [Report]) {
        let out = dir.appendingPathComponent("run")
        let r = try runTributary(["local", "--out", out.path, "--json"] + arguments)
        XCTAssertEqual(r.status, 0, r.stderr + r.stdout)
        // With --json, standard output is the JSON summary and nothing else (progress is on stderr).
        let summary = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
        XCTAssertTrue(r.stderr.contains("run folder:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("dashboard: https://127.0.0.1:"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.html").path), "the finished run's page")
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let reports = try lines.map { try JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
        return (summary, reports)
    }

    /// Every worker's parameter hash is the same in every round.
    func assertIdenticalParameters(_ reports: [Report], workers: Int, file: StaticString = #filePath, line: UInt = #line) {
        let byRound = Dictionary(grouping: reports, by: \.round)
        XCTAssertFalse(byRound.isEmpty, file: file, line: line)
        for (round, group) in byRound {
            let hashes = Set(group.compactMap(\.parameterHash))
            XCTAssertEqual(Set(group.map(\.name)).count, workers, "round \(round) has a report from every worker", file: file, line: line)
            XCTAssertEqual(hashes.count, 1, "round \(round): workers disagree: \(hashes)", file: file, line: line)
        }
    }

    func testDiLoCoWorkersAgreeEveryRoundLearnAndSendTheCodecsBytes() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: 40)
        let (summary, reports) = try runLocal(["--config", config, "--workers", "3", "--strategy", "diloco", "--codec", "int8",
                                               "--inner-steps", "10", "--round", "steps", "--speeds", "1", "--link", "unlimited"], in: dir)
        assertIdenticalParameters(reports, workers: 3)
        XCTAssertEqual(Set(reports.map(\.round)), [0, 1, 2, 3])
        let first = reports.filter { $0.round == 0 }.map(\.loss).reduce(0, +) / 3
        let last = reports.filter { $0.round == 3 }.map(\.loss).reduce(0, +) / 3
        XCTAssertLessThan(last, first - 0.3, "training loss falls from round 1 to round 4")
        XCTAssertLessThan(try XCTUnwrap(summary.validationLoss), log(32) - 0.3, "validation loss is below the uniform guess")
        XCTAssertEqual(summary.workers.map(\.steps), [40, 40, 40])

        // A ring all-reduce sends 2(n-1)/n of the codec's encoding, plus 52-byte frame headers.
        let parameters = 2 * 32 * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32
        let payload = Double(try XCTUnwrap(CodecID(name: "int8")).codec.encodedByteCount(count: parameters))
        let perRound = 2.0 * 2 / 3 * payload
        for w in summary.workers {
            // 4 rounds of pseudo-gradients, plus one tiny fp32 all-reduce for the validation loss.
            let sent = Double(w.bytesSent)
            XCTAssertGreaterThan(sent, 4 * perRound, w.name)
            XCTAssertLessThan(sent, 4 * perRound * 1.02 + 2_000, w.name)
        }
    }

    /// Overlapped DiLoCo: each round's all-reduce runs during the next round; the shared
    /// parameters still agree bit for bit every round and the loss still falls.
    func testOverlappedDiLoCoWorkersAgreeAndLearn() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: 40)
        let (summary, reports) = try runLocal(["--config", config, "--workers", "3", "--strategy", "diloco", "--codec", "int8",
                                               "--inner-steps", "10", "--round", "steps", "--overlap", "--speeds", "1", "--link", "unlimited"], in: dir)
        assertIdenticalParameters(reports, workers: 3)
        XCTAssertLessThan(try XCTUnwrap(summary.validationLoss), log(32) - 0.3)
        XCTAssertEqual(summary.workers.map(\.steps), [40, 40, 40])
    }

    func testDDPWorkersAgreeEveryStep() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: 12)
        let (summary, reports) = try runLocal(["--config", config, "--workers", "2", "--strategy", "ddp", "--codec", "fp32",
                                               "--speeds", "1", "--link", "unlimited"], in: dir)
        assertIdenticalParameters(reports, workers: 2)
        XCTAssertEqual(Set(reports.map(\.round)).count, 12)
        XCTAssertNotNil(summary.validationLoss)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/checkpoints/step-00000012/state.json").path))
    }

    /// With a time budget a fast worker does not wait for a slow one; with fixed steps it does.
    func testTimeRoundsKeepTheFastWorkerBusy() throws {
        func fastWorkerWaitShare(round: String) throws -> Double {
            let dir = try temporaryDirectory()
            let config = try writeConfig(in: dir, steps: 300, batch: 16, channels: 64)
            let (summary, _) = try runLocal(["--config", config, "--workers", "2", "--strategy", "diloco", "--codec", "fp32",
                                             "--inner-steps", "30", "--round", round, "--speeds", "1,0.25", "--link", "unlimited"], in: dir)
            let fast = try XCTUnwrap(summary.workers.first { $0.name == "worker-0" })
            let slow = try XCTUnwrap(summary.workers.first { $0.name == "worker-1" })
            if round == "time" { XCTAssertGreaterThan(fast.steps, 2 * slow.steps, "the fast worker takes more steps") }
            let share = fast.waitSeconds / (fast.waitSeconds + fast.computeSeconds)
            print(String(format: "%@ rounds: the fast worker waits %.1f%% of its time", round, 100 * share))
            return share
        }
        let timed = try fastWorkerWaitShare(round: "time")
        let fixed = try fastWorkerWaitShare(round: "steps")
        XCTAssertLessThan(timed, 0.10, "the fast worker waits at most a step per round")
        XCTAssertGreaterThan(fixed, 0.4, "with equal step counts the fast worker waits for the slow one (the test can fail)")
    }

    /// DDP with time rounds: each worker takes sequences in proportion to its measured speed, so
    /// the fast one waits hardly longer than with an equally fast peer (the all-reduce itself);
    /// with equal batches it waits for the slow one at every step.
    func testDDPTimeRoundsGiveTheFastWorkerMoreMicroBatches() throws {
        func run(round: String, speeds: String = "1,0.25") throws -> (waitShare: Double, tokenRatio: Double) {
            let dir = try temporaryDirectory()
            let config = try writeConfig(in: dir, steps: 30, batch: 48, channels: 64)
            let (summary, reports) = try runLocal(["--config", config, "--workers", "2", "--strategy", "ddp", "--codec", "fp32",
                                                   "--round", round, "--speeds", speeds, "--link", "unlimited"], in: dir)
            assertIdenticalParameters(reports, workers: 2)
            let fast = try XCTUnwrap(summary.workers.first { $0.name == "worker-0" })
            let slow = try XCTUnwrap(summary.workers.first { $0.name == "worker-1" })
            let share = fast.waitSeconds / (fast.waitSeconds + fast.computeSeconds)
            print(String(format: "DDP %@ rounds: the fast worker waits %.1f%% of its time, %d tokens vs %d", round, 100 * share, fast.tokens, slow.tokens))
            return (share, Double(fast.tokens) / Double(slow.tokens))
        }
        let timed = try run(round: "time"), fixed = try run(round: "steps"), equal = try run(round: "time", speeds: "1,1")
        XCTAssertGreaterThan(timed.tokenRatio, 3, "the fast worker takes about 4 sequences per step to the slow one's 1")
        XCTAssertEqual(fixed.tokenRatio, 1)
        XCTAssertLessThan(timed.waitShare - equal.waitShare, 0.1, "idling beyond the all-reduce itself stays small")
        XCTAssertGreaterThan(fixed.waitShare, 0.4, "with equal batches the fast worker waits (the test can fail)")
    }

    func testBadLocalFlagsAreOneLineErrors() throws {
        let bad = try runTributary(["local", "--speeds", "1,2", "--workers", "3"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("2 speeds for 3 workers"), bad.stderr)
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: 5, extra: "strategy: {codec: zip}")
        let codec = try runTributary(["local", "--config", config, "--out", dir.appendingPathComponent("r").path])
        XCTAssertNotEqual(codec.status, 0)
        XCTAssertTrue(codec.stderr.contains("strategy.codec"), codec.stderr)
    }

    /// Starts `tributary local` into `folder` and stops it (Ctrl-C) once every worker saved
    /// `steps` steps or more.
    func startAndStop(_ arguments: [String], folder: URL, workers: Int, steps: Int) throws {
        let process = Process()
        process.executableURL = tributaryExecutable
        process.arguments = ["local", "--out", folder.path] + arguments
        let log = folder.deletingLastPathComponent().appendingPathComponent("\(folder.lastPathComponent).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let states = folder.appendingPathComponent("checkpoints/workers")
        func saved(_ worker: String) -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: states.appendingPathComponent(worker).path)) ?? []
            return names.filter { $0.hasPrefix("step-") && !$0.contains(".") }.compactMap { Int($0.dropFirst(5)) }.max() ?? 0
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, process.isRunning, (0..<workers).map({ saved("worker-\($0)") }).min()! < steps {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertTrue(process.isRunning, "the run ended before it could be stopped")
        process.interrupt()
        process.waitUntilExit()
        try output.close()
        XCTAssertEqual(process.terminationStatus, 130, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    func reports(in folder: URL) throws -> [Report] {
        try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
    }

    /// A DiLoCo run stopped mid-way (Ctrl-C) and resumed with `local --resume` ends with the same
    /// parameters, bit for bit, as the same run never stopped: every worker saves its inner
    /// optimizer, data position, outer momentum and error-feedback residual, and the workers
    /// agree on the newest round all of them saved. Resumed with a third worker, the newcomer
    /// takes the first worker's state and all three agree to the end.
    func testStoppedRunResumesToTheSameParametersAndTakesANewWorker() throws {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: 100, checkpoint: "{interval: 5, keep: 2}")
        let common = ["--config", config, "--workers", "2", "--strategy", "diloco", "--codec", "int8", "--inner-steps", "5",
                      "--round", "steps", "--speeds", "1", "--link", "unlimited", "--throttles", "0.05,0.05"]
        let straight = dir.appendingPathComponent("straight")
        let a = try runTributary(["local", "--out", straight.path] + common)
        XCTAssertEqual(a.status, 0, a.stderr)

        let stopped = dir.appendingPathComponent("stopped")
        try startAndStop(common, folder: stopped, workers: 2, steps: 10)
        let before = try reports(in: stopped).count
        // Resumed with no layout flags: the run's own workers, speeds and link (local-run.json), not the defaults.
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: stopped.appendingPathComponent("local-run.json"))) as? [String: Any]
        XCTAssertEqual(saved?["workers"] as? Int, 2)
        XCTAssertEqual(saved?["link"] as? String, "unlimited")
        let b = try runTributary(["local", "--resume", stopped.path])
        XCTAssertEqual(b.status, 0, b.stderr + b.stdout)
        XCTAssertTrue(b.stderr.contains("2 workers") && b.stderr.contains("link unlimited"), b.stderr)
        func finalHashes(_ folder: URL) throws -> Set<String> { Set(try reports(in: folder).filter { $0.round == 19 }.compactMap(\.parameterHash)) }
        let expected = try finalHashes(straight)
        XCTAssertEqual(expected.count, 1)
        XCTAssertEqual(try finalHashes(stopped), expected, "the resumed run must end where the straight one did")
        XCTAssertGreaterThan(before, 0)
        XCTAssertGreaterThan(try reports(in: stopped).count, before, "the resumed run appends to the reports")

        // Resuming a finished run is refused with the reason.
        let again = try runTributary(["local", "--resume", stopped.path])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already finished"), again.stderr)

        // Two workers stopped, three resume: the new one starts from the others' state.
        let grown = dir.appendingPathComponent("grown")
        try startAndStop(common, folder: grown, workers: 2, steps: 10)
        let earlier = try reports(in: grown)
        let c = try runTributary(["local", "--resume", grown.path, "--workers", "3", "--speeds", "1", "--link", "unlimited"])
        XCTAssertEqual(c.status, 0, c.stderr + c.stdout)
        let resumed = Array(try reports(in: grown).dropFirst(earlier.count))
        let newcomer = resumed.filter { $0.name == "worker-2" }
        XCTAssertEqual(newcomer.map(\.round).max(), 19, "the third worker trains to the end")
        XCTAssertLessThanOrEqual(newcomer.map(\.round).min() ?? .max, (earlier.map(\.round).max() ?? 0) + 1, "no round is skipped")
        assertIdenticalParameters(resumed, workers: 3)
    }

    /// A slow 3-worker DiLoCo run (rounds of 5 steps, heartbeat timeout 1 s) of `steps` in the
    /// background, returned once it reported round 2: what a test disturbs.
    func startSlowRun(steps: Int, checkpoint: String = "{interval: 0, keep: 1}") throws -> (process: Process, out: Pipe, folder: URL) {
        let dir = try temporaryDirectory()
        let config = try writeConfig(in: dir, steps: steps, checkpoint: checkpoint)
        let folder = dir.appendingPathComponent("run")
        let process = Process()
        process.executableURL = tributaryExecutable
        process.arguments = ["local", "--out", folder.path, "--config", config, "--workers", "3", "--strategy", "diloco", "--codec", "int8",
                             "--inner-steps", "5", "--round", "steps", "--speeds", "1", "--link", "unlimited",
                             "--throttles", "0.05,0.05,0.05", "--heartbeat-timeout", "1"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        func reported() -> Int { ((try? reports(in: folder)) ?? []).map(\.round).max() ?? -1 }
        while Date() < deadline, process.isRunning, reported() < 2 { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertTrue(process.isRunning, "the run ended before a worker could be disturbed")
        return (process, out, folder)
    }

    /// Sends `signal` (a pkill flag such as -KILL) to `worker` of the run in `folder`.
    func signal(_ signal: String, _ worker: String, of folder: URL) throws {
        let kill = Process()
        kill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        kill.arguments = [signal, "-f", "\(folder.path)/token --name \(worker)"]
        try kill.run()
        kill.waitUntilExit()
        XCTAssertEqual(kill.terminationStatus, 0, "\(worker) was not found to signal")
    }

    /// A worker killed mid-run (SIGKILL): the coordinator drops it after the heartbeat timeout,
    /// the others re-form the ring, go back at most one round (their last rounds are kept in
    /// memory: this run saves no checkpoint until the end) and train to the end, bit-identical
    /// every round; the run ends successfully.
    func testAWorkerLostMidRunLeavesTheOthersTrainingToTheEnd() throws {
        let (process, out, folder) = try startSlowRun(steps: 100)
        try signal("-KILL", "worker-2", of: folder)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("worker-2 failed"), output)

        let all = try reports(in: folder)
        let last = try XCTUnwrap(all.compactMap(\.epoch).max())
        let survivors = all.filter { $0.epoch == last }
        let before = all.filter { $0.epoch != last && $0.name != "worker-2" }.map(\.round).max() ?? -1
        XCTAssertGreaterThanOrEqual(before, 2)
        assertIdenticalParameters(survivors, workers: 2)
        XCTAssertEqual(survivors.map(\.round).max(), 19, "the survivors train to the end")
        XCTAssertGreaterThanOrEqual(survivors.map(\.round).min() ?? 0, before, "at most one round is redone")
    }

    /// Issue 17: a frozen worker (SIGSTOP) held the others for as long as it was frozen. Now the
    /// coordinator drops it after the heartbeat timeout and the others leave the round at once and
    /// go on; when it is resumed (SIGCONT) it leaves its stale round at once, comes back holding
    /// only older rounds, takes the others' state (they do not go back for it), and all three
    /// finish the run in agreement.
    func testAFrozenWorkerIsLeftBehindAndRejoinsWhenItWakes() throws {
        // Every round saved (keep 3): the others still hold the round the frozen worker stopped at.
        let (process, out, folder) = try startSlowRun(steps: 150, checkpoint: "{interval: 5, keep: 3}")
        let deadline = Date().addingTimeInterval(60)
        func all() -> [Report] { (try? reports(in: folder)) ?? [] }
        try signal("-STOP", "worker-2", of: folder)
        let frozenAt = Date()
        let epochAtFreeze = all().compactMap(\.epoch).max() ?? 0
        // The others go on without it: a round of a newer epoch while it is still frozen.
        while Date() < deadline, !all().contains(where: { $0.name == "worker-0" && ($0.epoch ?? 0) > epochAtFreeze }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let wentOn = Date().timeIntervalSince(frozenAt)
        let reachedBeforeWaking = all().filter { $0.name == "worker-0" }.map(\.round).max() ?? 0
        let reportsBeforeWaking = all().count
        try signal("-CONT", "worker-2", of: folder)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertLessThan(wentOn, 15, "the others went on \(wentOn) s after the freeze (heartbeat timeout 1 s)")
        // Woken, it knows it was left behind (it slept far longer than it asked) and leaves its
        // stale round at once instead of finishing it.
        let log = try String(contentsOf: folder.appendingPathComponent("logs/worker-2.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("did not run for") && log.contains("leaving its stale round"), log)
        // and takes the others' state: they do not go back to where it stopped.
        let afterWaking = all().dropFirst(reportsBeforeWaking).filter { $0.name == "worker-0" }.map(\.round)
        XCTAssertGreaterThan(afterWaking.min() ?? .max, reachedBeforeWaking, "worker-0 went back when worker-2 woke: \(afterWaking)")

        let written = all()
        let last = try XCTUnwrap(written.compactMap(\.epoch).max())
        let final = written.filter { $0.epoch == last }
        XCTAssertEqual(Set(final.map(\.name)), ["worker-0", "worker-1", "worker-2"], "the woken worker is back in the last ring")
        assertIdenticalParameters(final, workers: 3)
        XCTAssertEqual(final.map(\.round).max(), 29, "all train to the end")
    }
}
