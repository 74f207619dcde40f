import Foundation
import RunTrust
import XCTest

/// Coordinator and worker processes for the tests that run a cluster on loopback.
extension XCTestCase {
    /// Starts `tributary` in the background; returns it and its stdout.
    func start(_ arguments: [String], errorLog: URL? = nil) throws -> (Process, FileHandle) {
        let process = Process()
        process.executableURL = tributaryExecutable
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        if let errorLog {
            _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: errorLog)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate() } }
        return (process, out.fileHandleForReading)
    }

    /// Reads stdout until a line contains `marker`; returns that line.
    func line(containing marker: String, from handle: FileHandle) throws -> String {
        var text = ""
        while true {
            let data = handle.availableData
            guard !data.isEmpty else { throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the process ended before printing '\(marker)': \(text)"]) }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
        }
    }

    /// A coordinator on a loopback port for a small Markov-source DiLoCo run of `steps` (H=`innerSteps`,
    /// `codec`, rounds of `round`: steps or time) waiting for `workers` workers; its process, address, token file, config and run folder.
    /// Workers trust it by the run authority's file (`--ca`), which the coordinator made before it printed its banner.
    func startCoordinator(in dir: URL, steps: Int, evaluationInterval: Int, flags: [String] = [], workers: Int = 2,
                          innerSteps: Int = 10, codec: String = "int8", round: String = "steps")
        throws -> (process: Process, address: String, token: URL, config: URL, run: URL) {
        let token = dir.appendingPathComponent("token")
        try "s3cret\n".write(to: token, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("run.yaml")
        try """
            model: {vocabSize: 32, contextLength: 32, layers: 1, heads: 2, channels: 32}
            batchSize: 4
            sequenceLength: 32
            steps: \(steps)
            data: {markovVocabulary: 32, trainTokens: 20000, validationTokens: 4096}
            evaluation: {interval: \(evaluationInterval), batches: 2}
            strategy: {name: diloco, innerSteps: \(innerSteps), codec: \(codec), round: \(round)}
            """.write(to: config, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let (coordinator, output) = try start(["coordinator", "--listen", "127.0.0.1:0", "--token-file", token.path,
                                               "--config", config.path, "--workers", "\(workers)", "--out", run.path] + flags)
        let banner = try line(containing: "coordinator on", from: output)
        let address = try XCTUnwrap(banner.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }).trimmingCharacters(in: .punctuationCharacters)
        return (coordinator, address, token, config, run)
    }

    /// `--ca` with the run authority of run folder `run`.
    func trusting(_ run: URL) -> [String] { ["--ca", run.appendingPathComponent(RunAuthority.certificateFile).path] }
}
