import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Basics
import Coordination
import RunTrust
import RunViews

/// The coordinator's state behind an actor, with the clock it runs on, the run's history (for
/// the dashboard) and its metrics.
public actor Coordinator {
    public private(set) var state: CoordinatorState
    /// Every accepted report and every event, in Unix time.
    public private(set) var history: RunHistory
    private let start = DispatchTime.now().uptimeNanoseconds
    private let startUnixTime = Date().timeIntervalSince1970
    private let onReport: @Sendable (RecordedReport, Int) -> Void
    private let onEvent: @Sendable (RunEvent) -> Void
    private let onSave: @Sendable (CoordinatorState.Saved) -> Void
    private let logger: Logger
    private let metrics = CoordinatorMetrics()
    /// The run's certificate authority, which signs each worker's ring certificate at join (nil:
    /// an `--insecure` run, whose ring is plain TCP).
    public nonisolated let authority: RunAuthority?
    /// Counts changes of what the dashboard shows, so that live views send only what changed.
    public private(set) var changes = 0
    /// Live views open now, and whether they were told to close (the server stops).
    private(set) var liveViews = 0
    private(set) var liveViewsClosed = false

    /// `history` is what the run did before this coordinator started (read back from its run
    /// folder); `onReport` sees every accepted round report with its worker's position by name,
    /// `onEvent` every event (the run folder's files) and `onSave` the state whenever membership
    /// or a report changed it (what a restarted coordinator takes back).
    public init(state: CoordinatorState, history: RunHistory = RunHistory(), authority: RunAuthority? = nil, logger: Logger,
                onReport: @escaping @Sendable (RecordedReport, Int) -> Void = { _, _ in },
                onEvent: @escaping @Sendable (RunEvent) -> Void = { _ in },
                onSave: @escaping @Sendable (CoordinatorState.Saved) -> Void = { _ in }) {
        self.state = state
        self.history = history
        self.authority = authority
        self.logger = logger
        self.onReport = onReport
        self.onEvent = onEvent
        self.onSave = onSave
        for r in history.reports { metrics.record(r.report) }
        if !history.reports.isEmpty || !history.events.isEmpty {
            // An actor's initialiser cannot call its methods: the same steps as `record`.
            let event = RunEvent(time: startUnixTime, kind: .coordinatorRestarted, worker: nil, epoch: 0, round: nil,
                                 detail: "read back \(history.reports.count) reports and \(history.events.count) events from the run folder")
            self.history.append(event)
            metrics.record(event)
            onEvent(event)
        }
    }

    private func record(_ event: RunEvent) {
        history.append(event)
        metrics.record(event)
        onEvent(event)
        changes += 1
    }

    /// Seconds since the coordinator started.
    public var now: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Records the state machine's new events in Unix time.
    private func recordEvents() {
        let events = state.takeEvents()
        if !events.isEmpty { onSave(state.saved) }
        for var event in events {
            event.time = startUnixTime + event.time
            if event.kind == .updateRejected { logger.warning("update rejected", metadata: ["detail": "\(event.detail)"]) }
            record(event)
        }
    }

    func join(_ r: JoinRequest) throws(CoordinatorRefusal) -> JoinReply {
        do {
            // 128 random bits: what proves the member's later requests are its own.
            var generator = SystemRandomNumberGenerator()
            let credential = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
            try checkKey(r)
            var reply = try state.join(r, credential: credential, now: now)
            (reply.certificatePEM, reply.authorityPEM) = try certify(r)
            recordEvents()
            logger.info("worker joined", metadata: ["name": "\(r.name)", "admission": "\(reply.admission)", "data": "\(r.dataHost):\(r.dataPort)"])
            return reply
        } catch {
            logger.warning("join refused", metadata: ["name": "\(loggable(r.name))", "reason": "\(error.reason)"])
            throw error
        }
    }

    /// A TLS run's join must bring a key to certify; one that cannot be certified is refused before
    /// the join changes membership.
    private func checkKey(_ r: JoinRequest) throws(CoordinatorRefusal) {
        guard authority != nil else { return }
        guard let key = r.publicKeyPEM else {
            throw CoordinatorRefusal(status: 400, reason: "this run's ring uses TLS and the join carries no public key to certify; "
                + "join with a worker of this version, or run the coordinator with --insecure")
        }
        do { _ = try RunAuthority.workerPublicKey(pem: key) } catch {
            throw CoordinatorRefusal(status: 400, reason: "\(error)")
        }
    }

    /// The worker's ring certificate and the authority, in a TLS run.
    private func certify(_ r: JoinRequest) throws(CoordinatorRefusal) -> (String?, String?) {
        guard let authority, let key = r.publicKeyPEM else { return (nil, nil) }
        do {
            return (try authority.issueWorkerCertificate(name: r.name, publicKeyPEM: key).serializeAsPEM().pemString, authority.certificatePEM)
        } catch {
            throw CoordinatorRefusal(status: 500, reason: "could not issue the worker's certificate: \(error)")
        }
    }

    func heartbeat(_ name: String, credential: String?) throws(CoordinatorRefusal) -> RingView {
        try state.authenticate(name, credential: credential)
        defer { recordEvents() }
        return try state.heartbeat(name, now: now)
    }

    func ringBroken(_ report: RingBroken, credential: String?) throws(CoordinatorRefusal) -> RingView {
        try state.authenticate(report.name, credential: credential)
        defer { recordEvents() }
        return try state.ringBroken(report, now: now)
    }

    func leave(_ name: String, credential: String?) throws(CoordinatorRefusal) {
        try state.authenticate(name, credential: credential)
        try state.leave(name, now: now)
        recordEvents()
        logger.info("worker left", metadata: ["name": "\(name)"])
    }

    func report(_ r: WorkerReport, credential: String?) throws(CoordinatorRefusal) {
        try state.authenticate(r.name, credential: credential)
        defer { recordEvents() }
        guard try state.report(r, now: now) else { return }
        let record = RecordedReport(report: r, receivedAt: Date().timeIntervalSince1970)
        history.append(record)
        metrics.record(r)
        changes += 1
        // The report's line before the state that says it arrived: a coordinator killed between
        // the two finds the line on restart (and takes the report as received, see
        // `CoordinatorState.reconcile`), never a state that claims a report no file holds.
        if let position = state.positionByName(of: r.name) { onReport(record, position) }
        onSave(state.saved)
    }

    /// Marks silent workers as lost.
    public func expire() {
        for name in state.expire(now: now) { logger.warning("worker lost: no heartbeat", metadata: ["name": "\(name)"]) }
        recordEvents()
    }

    public func status() -> StatusReport { state.status(now: now) }

    /// `/metrics`: the Prometheus text of the run as it is now.
    public func metricsText() -> String { metrics.render(status()) }

    /// The charts of the history as of `changes`: drawn once per change, however many views look.
    private var charts: (changes: Int, byName: [String: String])?

    /// What the dashboard shows now.
    public func dashboardSnapshot() -> DashboardSnapshot {
        if charts?.changes != changes { charts = (changes, RunCharts(history).byName) }
        return DashboardSnapshot(status: status(), ring: state.ring, history: history, charts: charts?.byName)
    }

    /// Live views a coordinator serves at once: each one costs a snapshot a second.
    public static let maxLiveViews = 32

    /// Takes a live view's place, or says there is none left.
    func openLiveView() -> Bool {
        guard !liveViewsClosed, liveViews < Self.maxLiveViews else { return false }
        liveViews += 1
        return true
    }

    func closeLiveView() { liveViews -= 1 }

    /// Tells every live view to end (the server is stopping, and waits for open responses).
    func closeLiveViews() { liveViewsClosed = true }
}

/// The coordinator's HTTP/JSON API on Hummingbird.
///
/// `POST /v1/join`, `/v1/heartbeat`, `/v1/ring-broken`, `/v1/leave`, `/v1/report` take JSON bodies; `GET /v1/run`, `/v1/ring`,
/// `/status` (JSON) and `/metrics` (Prometheus text) read state; `GET /` is the live dashboard,
/// `/v1/live` its server-sent events and `/v1/dashboard` one snapshot of them as JSON. Every refusal or malformed
/// request gets a 4xx with a JSON `{"error": ...}` naming what was wrong.
public enum CoordinatorServer {
    /// Largest request body accepted.
    public static let maxBodyBytes = 1 << 20

    /// The API's routes over `coordinator`: what `run` serves, and what tests drive without a
    /// socket (through `buildResponder()`).
    public static func router(for coordinator: Coordinator) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/join") { request, context in
            try await answer { try await coordinator.join(decode(JoinRequest.self, request, context)) }
        }
        router.post("/v1/heartbeat") { request, context in
            try await answer { try await coordinator.heartbeat(decode(WorkerName.self, request, context).name, credential: credential(request)) }
        }
        router.post("/v1/ring-broken") { request, context in
            try await answer { try await coordinator.ringBroken(decode(RingBroken.self, request, context), credential: credential(request)) }
        }
        router.post("/v1/leave") { request, context in
            try await answer { () async throws -> ErrorBody? in
                try await coordinator.leave(decode(WorkerName.self, request, context).name, credential: credential(request))
                return nil
            }
        }
        router.post("/v1/report") { request, context in
            try await answer { () async throws -> ErrorBody? in
                try await coordinator.report(decode(WorkerReport.self, request, context), credential: credential(request))
                return nil
            }
        }
        router.get("/v1/run") { request, _ in
            try await answer { () async throws -> RunDescription in
                try await coordinator.state.authenticateRun(token: credential(request))
                return await coordinator.state.run
            }
        }
        router.get("/v1/ring") { _, _ in try await answer { await coordinator.state.ring } }
        // The run authority's certificate (public): what workers pin with --ca-hash or save for --ca.
        router.get("/v1/ca") { _, _ in
            guard let authority = coordinator.authority else {
                return json(ErrorBody(error: "this coordinator runs with --insecure: it has no certificate authority"), status: .notFound)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-pem-file"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: authority.certificatePEM)))
        }
        router.get("/status") { _, _ in try await answer { await coordinator.status() } }
        router.get("/metrics") { _, _ in
            let text = await coordinator.metricsText()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/v1/live") { _, _ in try await liveView(coordinator) }
        router.get("/v1/dashboard") { _, _ in try await answer { await coordinator.dashboardSnapshot() } }
        return router
    }

    /// How much of itself the server gives to connections: what a flood of idle sockets cannot take.
    public struct Limits: Sendable {
        /// Seconds a connection may sit without a request (or without finishing one) before it is
        /// closed; a response being written (a live view) does not count as idle.
        public var idleSeconds = 15.0
        /// Connections served at once; more wait, unaccepted, until one closes (so that a flood
        /// neither spins on a full descriptor table nor starves the workers for long).
        public var maxConnections = Limits.defaultMaxConnections

        public init() {}

        /// 512, or half this process's descriptor limit if that is lower.
        public static var defaultMaxConnections: Int {
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 512 }
            return max(16, min(512, Int(clamping: limit.rlim_cur) / 2))
        }
    }

    /// Serves `coordinator` on `host:port` until the task is cancelled; `onListening` gets the
    /// bound port (useful with port 0). Expires silent workers once a second.
    /// Serves HTTPS with a certificate from the coordinator's run authority, or plain HTTP for an
    /// `--insecure` coordinator (no authority).
    public static func run(_ coordinator: Coordinator, host: String, port: Int, limits: Limits = Limits(), logger: Logger,
                           onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let router = router(for: coordinator)
        let http = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .nanoseconds(Int64(limits.idleSeconds * 1e9))))
        // Hummingbird logs a cancelled shutdown as an error; our own events go to `logger`.
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let app = Application(
            router: router,
            server: try coordinator.authority.map { try .tls(http, tlsConfiguration: try $0.serverConfiguration()) } ?? http,
            configuration: .init(address: .hostname(host, port: port), serverName: "tributary-coordinator",
                                 availableConnectionsDelegate: .maximum(limits.maxConnections, logger: serverLogger)),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: serverLogger
        )
        var services = ServiceGroupConfiguration(services: [app], logger: serverLogger)
        services.maximumGracefulShutdownDuration = Self.shutdownSeconds
        let serviceGroup = ServiceGroup(configuration: services)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Stopping is a graceful shutdown, never a cancellation of the accept loop: a cancelled loop
                // drops the connections NIO accepted that it had not taken yet, and each dropped one traps
                // (SwiftNIO's NIOAsyncWriter deinit; seen once as `local` stopped its coordinator while its
                // last status request came in). So the service group runs outside this task's cancellation,
                // and a cancellation shuts it down gracefully (open live views, which would hold it, end first).
                let serving = Task { try await serviceGroup.run() }
                try await withTaskCancellationHandler {
                    try await serving.value
                } onCancel: {
                    Task {
                        await coordinator.closeLiveViews()
                        await serviceGroup.triggerGracefulShutdown()
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                    await coordinator.expire()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// The longest a graceful shutdown waits for open requests before it cancels them.
    static let shutdownSeconds: Duration = .seconds(5)

    /// Seconds between live snapshots, and the longest a live view goes without one (so that
    /// "last heard" ages on the page and a dead connection is noticed).
    static let liveInterval: Duration = .seconds(1)
    static let liveRefreshTicks = 5

    /// `/v1/live`: the dashboard's server-sent events, a `snapshot` event whenever the run changed
    /// (and every few seconds regardless), until the run finishes, the viewer leaves or the
    /// server stops.
    static func liveView(_ coordinator: Coordinator) async throws -> Response {
        guard await coordinator.openLiveView() else {
            return json(ErrorBody(error: "\(Coordinator.maxLiveViews) live views are open, the most this coordinator serves; "
                                  + "close one or read /status"), status: .serviceUnavailable)
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { Task { await coordinator.closeLiveView() } }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var sentChanges = -1, quietTicks = 0
            while await !coordinator.liveViewsClosed {
                let changes = await coordinator.changes
                if changes != sentChanges || quietTicks >= liveRefreshTicks {
                    let snapshot = await coordinator.dashboardSnapshot()
                    let data = try encoder.encode(snapshot)
                    var buffer = ByteBuffer(string: "event: snapshot\ndata: ")
                    buffer.writeBytes(data)
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                    (sentChanges, quietTicks) = (changes, 0)
                    if snapshot.phase == RunPhase.finished.rawValue { break }
                } else {
                    quietTicks += 1
                }
                try await Task.sleep(for: liveInterval)
            }
            try await writer.finish(nil)
        })
    }

    /// The member credential a request carries (`Authorization: Bearer …`), if any.
    static func credential(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.hasPrefix("Bearer ") else { return nil }
        return String(value.dropFirst(7))
    }

    /// A request's JSON body, or a 400/413 that says what was wrong with it.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: some RequestContext) async throws(CoordinatorRefusal) -> T {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxBodyBytes) } catch {
            throw CoordinatorRefusal(status: 413, reason: "request body over \(maxBodyBytes) bytes")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)) } catch {
            throw CoordinatorRefusal(status: 400, reason: "malformed \(T.self) JSON: \(describeDecodingError(error))")
        }
    }

    /// Runs `body` and turns its value into a JSON 200 (204 for nil) and a refusal into its status.
    static func answer<T: Encodable>(_ body: () async throws -> T?) async throws -> Response {
        do {
            guard let value = try await body() else { return Response(status: .noContent) }
            return json(value, status: .ok)
        } catch let refusal as CoordinatorRefusal {
            return json(ErrorBody(error: refusal.reason), status: HTTPResponse.Status(code: refusal.status))
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"response could not be encoded\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
