import Coordination
import CoreMetrics
import Foundation
import Prometheus

/// The coordinator's metrics, recorded through swift-metrics and exported by swift-prometheus
/// (`/metrics`, text format 0.0.4). Workers report running totals; the counters here add what
/// each report adds, so they keep rising when a worker restarts and counts from zero again.
final class CoordinatorMetrics {
    let registry = PrometheusCollectorRegistry()
    private let factory: DescribedPrometheusFactory

    /// One worker's handles and what its last counted report said.
    private struct Worker {
        var bytesSent, bytesReceived, tokens, steps: CoreMetrics.Counter
        var computeSeconds, waitSeconds: FloatingPointCounter
        var round, loss, secondsSinceSeen, admission: CoreMetrics.Gauge
        var roundDuration, allReduceDuration: CoreMetrics.Timer
        var last: WorkerReport?
    }
    private var workers: [String: Worker] = [:]
    private let byState: [MemberState: CoreMetrics.Gauge]
    private let expected, epoch, finished, round, validation: CoreMetrics.Gauge

    static let help: [String: String] = [
        "tributary_workers": "Workers by state.",
        "tributary_expected_workers": "Workers the ring waits for before training starts.",
        "tributary_ring_epoch": "Changes of ring membership so far.",
        "tributary_run_finished": "1 once every worker reported its last round.",
        "tributary_run_round": "The run's current round (the newest an active worker reported), from 0.",
        "tributary_validation_loss": "Latest validation loss of the shared parameters.",
        "tributary_events_total": "Run events by kind (joins, losses, re-forms, resumes, checkpoints).",
        "tributary_rejected_updates_total": "Rounds whose update the workers kept out of the shared model, by the worker named first.",
        "tributary_bytes_sent_total": "Bytes the worker sent to peers.",
        "tributary_bytes_received_total": "Bytes the worker received from peers.",
        "tributary_tokens_total": "Training tokens the worker processed.",
        "tributary_steps_total": "Optimizer steps the worker took (inner steps for DiLoCo).",
        "tributary_compute_seconds_total": "Seconds the worker spent computing.",
        "tributary_wait_seconds_total": "Seconds the worker spent in collectives or waiting for peers.",
        "tributary_worker_round": "Last round the worker reported, from 0.",
        "tributary_training_loss": "Mean training loss of the worker's last round.",
        "tributary_worker_seconds_since_seen": "Seconds since the coordinator heard from the worker.",
        "tributary_worker_admission": "When the coordinator admitted the worker's name (0 first).",
        "tributary_round_duration_seconds": "Wall seconds of each of the worker's rounds.",
        "tributary_allreduce_duration_seconds": "Seconds of each round the worker spent in collectives or waiting for peers.",
    ]

    init() {
        let seconds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
        let factory = DescribedPrometheusFactory(registry: registry, help: Self.help,
                                                 buckets: seconds.map { .nanoseconds(Int64($0 * 1e9)) })
        self.factory = factory
        byState = Dictionary(uniqueKeysWithValues: [MemberState.active, .left, .lost].map {
            ($0, CoreMetrics.Gauge(label: "tributary_workers", dimensions: [("state", $0.rawValue)], factory: factory))
        })
        expected = CoreMetrics.Gauge(label: "tributary_expected_workers", factory: factory)
        epoch = CoreMetrics.Gauge(label: "tributary_ring_epoch", factory: factory)
        finished = CoreMetrics.Gauge(label: "tributary_run_finished", factory: factory)
        round = CoreMetrics.Gauge(label: "tributary_run_round", factory: factory)
        validation = CoreMetrics.Gauge(label: "tributary_validation_loss", factory: factory)
    }

    /// Counts an accepted report: its increments, and its round's durations when it follows the
    /// worker's previous round in the same ring.
    func record(_ report: WorkerReport) {
        var w = workers[report.name] ?? makeWorker(report.name)
        let last = w.last
        // A running total below the last one is a worker that started counting again.
        func added(_ now: Int, _ before: Int?) -> Int { now >= (before ?? 0) ? now - (before ?? 0) : now }
        func added(_ now: Double, _ before: Double?) -> Double { now >= (before ?? 0) ? now - (before ?? 0) : now }
        w.bytesSent.increment(by: added(report.bytesSent, last?.bytesSent))
        w.bytesReceived.increment(by: added(report.bytesReceived, last?.bytesReceived))
        w.tokens.increment(by: added(report.tokens, last?.tokens))
        w.steps.increment(by: added(report.steps, last?.steps))
        w.computeSeconds.increment(by: added(report.computeSeconds, last?.computeSeconds))
        w.waitSeconds.increment(by: added(report.waitSeconds, last?.waitSeconds))
        w.round.record(report.round)
        w.loss.record(report.loss)
        if let last, report.round == last.round + 1, report.epoch == last.epoch, report.elapsedSeconds >= last.elapsedSeconds {
            w.roundDuration.recordSeconds(report.elapsedSeconds - last.elapsedSeconds)
            w.allReduceDuration.recordSeconds(max(0, report.waitSeconds - last.waitSeconds))
        }
        if let v = report.validationLoss { validation.record(v) }
        w.last = report
        workers[report.name] = w
    }

    func record(_ event: RunEvent) {
        CoreMetrics.Counter(label: "tributary_events_total", dimensions: [("kind", event.kind.rawValue)], factory: factory).increment()
        if event.kind == .updateRejected {
            CoreMetrics.Counter(label: "tributary_rejected_updates_total", dimensions: [("worker", event.worker ?? "none named")],
                                factory: factory).increment()
        }
    }

    /// The exposition text, with the gauges that age (seconds since seen) and the run's state as
    /// of `status`.
    func render(_ status: StatusReport) -> String {
        for (state, gauge) in byState { gauge.record(status.members.count { $0.state == state }) }
        expected.record(status.expectedWorkers)
        epoch.record(status.epoch)
        finished.record(status.phase == .finished ? 1 : 0)
        if let r = status.round { round.record(r) }
        for member in status.members {
            let worker = workers[member.name] ?? makeWorker(member.name)
            worker.secondsSinceSeen.record(member.secondsSinceSeen)
            worker.admission.record(member.admission)
        }
        return registry.emitToString()
    }

    private func makeWorker(_ name: String) -> Worker {
        let labels = [("worker", name)]
        let worker = Worker(
            bytesSent: CoreMetrics.Counter(label: "tributary_bytes_sent_total", dimensions: labels, factory: factory),
            bytesReceived: CoreMetrics.Counter(label: "tributary_bytes_received_total", dimensions: labels, factory: factory),
            tokens: CoreMetrics.Counter(label: "tributary_tokens_total", dimensions: labels, factory: factory),
            steps: CoreMetrics.Counter(label: "tributary_steps_total", dimensions: labels, factory: factory),
            computeSeconds: FloatingPointCounter(label: "tributary_compute_seconds_total", dimensions: labels, factory: factory),
            waitSeconds: FloatingPointCounter(label: "tributary_wait_seconds_total", dimensions: labels, factory: factory),
            round: CoreMetrics.Gauge(label: "tributary_worker_round", dimensions: labels, factory: factory),
            loss: CoreMetrics.Gauge(label: "tributary_training_loss", dimensions: labels, factory: factory),
            secondsSinceSeen: CoreMetrics.Gauge(label: "tributary_worker_seconds_since_seen", dimensions: labels, factory: factory),
            admission: CoreMetrics.Gauge(label: "tributary_worker_admission", dimensions: labels, factory: factory),
            roundDuration: CoreMetrics.Timer(label: "tributary_round_duration_seconds", dimensions: labels, factory: factory),
            allReduceDuration: CoreMetrics.Timer(label: "tributary_allreduce_duration_seconds", dimensions: labels, factory: factory),
            last: WorkerReport?.none)
        workers[name] = worker
        return worker
    }
}

/// swift-prometheus's registry behind swift-metrics' factory protocol, with each metric's HELP
/// text and the histogram buckets of this service (swift-prometheus's own factory registers
/// every metric without help).
struct DescribedPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let help: [String: String]
    let buckets: [Duration]

    private func describe(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: describe(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: describe(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        registry.makeGauge(descriptor: describe(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: describe(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: describe(label), labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
