import Foundation
import XCTest

/// What a `tributary` child process printed and how it ended.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// The `tributary` executable built next to this test bundle.
var tributaryExecutable: URL {
    let candidates = [Bundle.main.bundleURL] + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
    for dir in candidates {
        let url = dir.appendingPathComponent("tributary")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return Bundle.main.bundleURL.appendingPathComponent("tributary")
}

/// Runs `tributary` with `arguments` as a child process, as a user would, and waits for it.
func runTributary(_ arguments: [String], environment: [String: String] = [:]) throws -> CLIResult {
    try runProcess(tributaryExecutable, arguments, environment: environment)
}

/// Runs `executable` with `arguments` (and `environment` over this process's) as a child process and waits for it.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> CLIResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read stderr on another thread so that neither pipe can fill up and stall the child.
    nonisolated(unsafe) var stderr = Data()
    let reader = Thread { stderr = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
    return CLIResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                     stderr: String(decoding: stderr, as: UTF8.self))
}

extension XCTestCase {
    /// A new empty folder under the system's temporary directory, removed when the test ends.
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
