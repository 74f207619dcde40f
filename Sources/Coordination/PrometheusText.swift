import Foundation

/// Renders a `StatusReport` in the Prometheus text exposition format (version 0.0.4).
public enum PrometheusText {
    /// Per-run gauges, then one sample per worker for each counter of its latest report.
    public static func render(_ status: StatusReport) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels) \(format(s.value))\n" }
        }
        let active = status.members.filter { $0.state == .active }
        metric("tributary_workers", "gauge", "Workers by state.",
               [MemberState.active, .left, .lost].map { state in
                   ("{state=\"\(state.rawValue)\"}", Double(status.members.count { $0.state == state }))
               })
        metric("tributary_expected_workers", "gauge", "Workers the ring waits for.", [("", Double(status.expectedWorkers))])
        metric("tributary_ring_epoch", "gauge", "Changes of ring membership so far.", [("", Double(status.epoch))])
        metric("tributary_run_finished", "gauge", "1 once every worker reported its last round.",
               [("", status.phase == .finished ? 1 : 0)])
        if let round = status.round {
            metric("tributary_run_round", "gauge", "The run's current round (the newest an active worker reported).", [("", Double(round))])
        }
        let reported = status.members.compactMap { m in m.lastReport.map { (label: "{worker=\"\(escape(m.name))\",admission=\"\(m.admission)\"}", report: $0) } }
        let counters: [(String, String, (WorkerReport) -> Double)] = [
            ("tributary_worker_bytes_sent_total", "Bytes this worker sent to peers.", { Double($0.bytesSent) }),
            ("tributary_worker_bytes_received_total", "Bytes this worker received from peers.", { Double($0.bytesReceived) }),
            ("tributary_worker_compute_seconds_total", "Seconds computing.", { $0.computeSeconds }),
            ("tributary_worker_wait_seconds_total", "Seconds in collectives or waiting for peers.", { $0.waitSeconds }),
            ("tributary_worker_tokens_total", "Training tokens processed.", { Double($0.tokens) }),
            ("tributary_worker_steps_total", "Optimizer steps taken.", { Double($0.steps) }),
        ]
        for (name, help, value) in counters {
            metric(name, "counter", help, reported.map { ($0.label, value($0.report)) })
        }
        metric("tributary_worker_round", "gauge", "Last round the worker reported.", reported.map { ($0.label, Double($0.report.round)) })
        metric("tributary_worker_loss", "gauge", "Mean training loss of the worker's last round.", reported.map { ($0.label, $0.report.loss) })
        let validation = reported.compactMap { r in r.report.validationLoss.map { (r.label, $0) } }
        metric("tributary_validation_loss", "gauge", "Latest validation loss of the shared parameters.", validation)
        metric("tributary_active_worker_seconds_since_seen", "gauge", "Seconds since the coordinator heard from each active worker.",
               active.map { ("{worker=\"\(escape($0.name))\"}", $0.secondsSinceSeen) })
        return out
    }

    private static func format(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "+Inf" : "-Inf" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return String(x)
    }

    private static func escape(_ label: String) -> String {
        label.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
