import Foundation
import XCTest

/// Stopping `tributary train` (SIGKILL between saves, or SIGINT) and resuming gives the same model
/// as a run that was never stopped.
final class ResumeCommandTests: XCTestCase {
    let yaml = """
        model: {vocabSize: 64, contextLength: 32, layers: 2, heads: 4, channels: 64}
        batchSize: 8
        sequenceLength: 32
        steps: 300
        optimizer: {warmupSteps: 10}
        checkpoint: {interval: 10, keep: 2}
        evaluation: {interval: 100, batches: 2}
        data: {trainTokens: 50000, validationTokens: 5000}
        """


    func finalModel(_ run: URL) throws -> Data {
        try Data(contentsOf: run.appendingPathComponent("checkpoints/step-00000300/model.safetensors"))
    }

    /// Starts a run in `folder`, waits for its step-10 checkpoint, sends `signal`, waits for exit.
    func startAndStop(config: String, folder: URL, signal sig: Int32) throws -> (status: Int32, stillRunning: Bool) {
        let process = Process()
        process.executableURL = tributaryExecutable
        process.arguments = ["train", "--config", config, "--out", folder.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let marker = folder.appendingPathComponent("checkpoints/step-00000010/state.json")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker.path) && Date() < deadline && process.isRunning {
            Thread.sleep(forTimeInterval: 0.002)
        }
        let running = process.isRunning
        kill(process.processIdentifier, sig)
        process.waitUntilExit()
        return (process.terminationStatus, running)
    }

    /// A folder with the config and, in `straight/`, the run trained without stopping.
    func straightRun() throws -> (URL, URL) {
        let dir = try temporaryDirectory()
        let config = dir.appendingPathComponent("run.yaml")
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        let straight = try runTributary(["train", "--config", config.path, "--out", dir.appendingPathComponent("straight").path])
        XCTAssertEqual(straight.status, 0, straight.stderr)
        return (dir, config)
    }

    func testKillBetweenSavesThenResume() throws {
        let (dir, config) = try straightRun()

        let killed = dir.appendingPathComponent("killed")
        let (_, running) = try startAndStop(config: config.path, folder: killed, signal: SIGKILL)
        XCTAssertTrue(running, "the run finished before it could be killed; make it longer")
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed.appendingPathComponent("checkpoints/step-00000300").path))
        let resumed = try runTributary(["train", "--resume", "--out", killed.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming from step-"), resumed.stdout)
        XCTAssertEqual(try finalModel(killed), try finalModel(dir.appendingPathComponent("straight")), "resumed model differs")
        let lines = try String(contentsOf: killed.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 300, "metrics should hold each step once")
    }

    func testInterruptSavesThenResume() throws {
        let (dir, config) = try straightRun()

        let interrupted = dir.appendingPathComponent("interrupted")
        let (status, running) = try startAndStop(config: config.path, folder: interrupted, signal: SIGINT)
        XCTAssertTrue(running)
        XCTAssertEqual(status, 130, "an interrupted run exits 130 after saving")
        let resumed = try runTributary(["train", "--resume", "--out", interrupted.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try finalModel(interrupted), try finalModel(dir.appendingPathComponent("straight")))
    }

    func testResumeWithoutCheckpointsIsAClearError() throws {
        let dir = try temporaryDirectory()
        let r = try runTributary(["train", "--resume", "--out", dir.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: "), r.stderr)
    }
}
