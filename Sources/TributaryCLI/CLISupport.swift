import ArgumentParser
import Foundation
import Logging
import Synchronization

// What every command shares: errors as one line and an exit code, JSON on standard output,
// people's output on standard error, interrupts.

/// Runs `body`, turning any error into a one-line message on stderr and exit code 1.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}

/// `reportingErrors` for async commands.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Prints `value` as pretty JSON (sorted keys) on standard output: the only thing a `--json`
/// command writes there.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Logs to stderr at `level`.
func makeLogger(_ label: String, level: Logger.Level) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = level
    return logger
}

/// Progress on standard error: one rewritten line on a terminal, a line per step otherwise.
final class ProgressOnStandardError: Sendable {
    private let interactive = isatty(STDERR_FILENO) == 1
    private let last = Mutex<(step: Int, open: Bool)>((-1, false))

    /// Shows `line` (rewriting the last one on a terminal); elsewhere only when `step` changed.
    func show(_ line: String, step: Int) {
        last.withLock { last in
            if interactive {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
                last.open = true
            } else if step != last.step {
                printError(line)
            }
            last.step = step
        }
    }

    /// A line of its own, below the progress line.
    func notice(_ line: String) {
        finish()
        printError(line)
    }

    /// Ends a rewritten line.
    func finish() {
        last.withLock { last in
            if last.open { FileHandle.standardError.write(Data("\n".utf8)) }
            last.open = false
        }
    }
}

/// Set by SIGINT or SIGTERM: the training loop saves a checkpoint and stops after the current step.
final class InterruptFlag: @unchecked Sendable {
    private let state = Mutex(false)
    // Written once in init, then only kept alive.
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.state.withLock { $0 = true } }
            source.resume()
            sources.append(source)
        }
    }

    var isSet: Bool { state.withLock { $0 } }
}
