import Foundation
import TensorCore

/// Restarts this program with the right OpenBLAS kernels when the library picked a fallback for the CPU.
///
/// OpenBLAS reads `OPENBLAS_CORETYPE` once, when it loads, before `main` runs; the only way to change
/// its choice for this process is to execute the program again with the variable set. That happens
/// before any thread or file is opened, so nothing is lost, and children (workers of a local run)
/// inherit the variable and start right the first time.
enum BLASCoreRestart {
    /// Set for the restarted process: the core OpenBLAS had picked before.
    static let restartedFrom = "TRIBUTARY_BLAS_FALLBACK"
    /// Set to 1 to keep whatever OpenBLAS picks (or `OPENBLAS_CORETYPE` asks for).
    static let keepVariable = "TRIBUTARY_KEEP_BLAS_CORE"

    /// What happened at start, for the engine commands to report (written once, before any task runs).
    nonisolated(unsafe) private(set) static var note: String?

    /// Executes this program again with `OPENBLAS_CORETYPE` set when the core is a fallback; on return, `note`
    /// says what was done.
    static func restartIfFallback() {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        let check = BLASCoreCheck.current()
        if let previous = environment[restartedFrom] {
            unsetenv(restartedFrom)
            note = check.isFallback
                ? "OpenBLAS has no better kernels than \(check.active) for this \(check.cpu.tier.label) CPU; "
                    + "asked for \(environment["OPENBLAS_CORETYPE"] ?? "?") after \(previous)"
                : "OpenBLAS picked \(previous), a fallback on this \(check.cpu.tier.label) CPU; "
                    + "restarted with OPENBLAS_CORETYPE=\(check.active) (\(keepVariable)=1 keeps OpenBLAS's choice)"
            return
        }
        guard environment[keepVariable] != "1", let replacement = check.replacement else {
            if check.isFallback { note = check.summary + "; kept because \(keepVariable)=1" }
            return
        }
        setenv("OPENBLAS_CORETYPE", replacement, 1)
        setenv(restartedFrom, check.active, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only a failed exec returns: go on with the slow kernels and say so.
        let reason = String(cString: strerror(errno))
        unsetenv(restartedFrom)
        note = check.summary + "; restarting with OPENBLAS_CORETYPE=\(replacement) failed: \(reason)"
        #endif
    }

    /// Writes the note, if any, to standard error (commands that train or measure the engine call this).
    static func announce() {
        guard let note else { return }
        FileHandle.standardError.write(Data(("tributary: " + note + "\n").utf8))
    }
}
