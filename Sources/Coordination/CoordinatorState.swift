import Foundation
import Basics

/// Why the coordinator refused a request; `status` is the HTTP status it answers with.
public struct CoordinatorRefusal: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public var description: String { reason }

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }
}

/// Membership and run state of one run, as a value type driven by requests and a clock, so that
/// it is tested without sockets. The HTTP server holds one behind an actor.
public struct CoordinatorState: Sendable {
    public let run: RunDescription
    /// Shared secret every worker must present.
    let token: String
    /// Seconds without a heartbeat after which a member counts as lost.
    public let heartbeatTimeout: Double
    public private(set) var epoch = 0
    public private(set) var phase = RunPhase.waiting
    /// Name of the member whose state workers without any take, chosen whenever the epoch
    /// changes and fixed until the next change, so that every member of a ring reads the same.
    public private(set) var stateSource: String?

    struct Member: Sendable, Codable {
        var name: String
        var admission: Int
        /// The secret its heartbeats, reports and leave must carry.
        var credential: String
        var host: String
        var port: Int
        var state: MemberState
        var joins: Int
        var lastSeen: Double
        var lastReport: WorkerReport?
        /// Joined after training started.
        var joinedRunning = false

        /// How the ring and a join reply show it.
        var ringMember: RingMember { RingMember(admission: admission, name: name, host: host, port: port) }
    }
    /// Members by admission; an admission stays with its name while the member is kept (a lost
    /// or departed one may give its slot to a newcomer once the run is full).
    private(set) var members: [Member] = []
    /// The next name's admission number: never reused.
    private var nextAdmission = 0
    /// What happened since the owner last took the events (`takeEvents`), oldest first.
    public private(set) var pendingEvents: [RunEvent] = []
    /// The last rejected update an event was emitted for (every worker reports it).
    private var lastRejectedRound: Int?
    private var lastRejectedEpoch: Int?
    /// Members that said their ring of `epoch` broke while the membership stayed as it was, and when the first did.
    private var brokenRing: (epoch: Int, names: Set<String>, since: Double)?
    /// Events kept untaken at most: an owner that never takes them cannot grow the state.
    static let maxPendingEvents = 1_000

    public init(run: RunDescription, token: String, heartbeatTimeout: Double = 15) {
        self.run = run
        self.token = token
        self.heartbeatTimeout = heartbeatTimeout
    }

    /// What a coordinator keeps on disk so that a restarted one goes on with the same run: the run
    /// (its id included), the ring's epoch and phase, and every member with its credential.
    public struct Saved: Codable, Sendable {
        var run: RunDescription
        var epoch: Int
        var phase: RunPhase
        var stateSource: String?
        var members: [Member]
        var nextAdmission: Int

        /// The run this state belongs to.
        public var runDescription: RunDescription { run }
        public var isFinished: Bool { phase == .finished }
    }

    /// This state as a restarted coordinator would take it back.
    public var saved: Saved {
        Saved(run: run, epoch: epoch, phase: phase, stateSource: stateSource, members: members, nextAdmission: nextAdmission)
    }

    /// A coordinator's state taken back after a restart at `now` (its own clock): every member
    /// counts as heard from now, so that each has a heartbeat timeout to find the new coordinator.
    public init(restoring saved: Saved, token: String, heartbeatTimeout: Double = 15, now: Double) {
        self.init(run: saved.run, token: token, heartbeatTimeout: heartbeatTimeout)
        (epoch, phase, stateSource, nextAdmission) = (saved.epoch, saved.phase, saved.stateSource, saved.nextAdmission)
        members = saved.members.map { m in
            var m = m
            m.lastSeen = now
            return m
        }
    }

    /// Makes each member's last report the newest one the run folder holds: the files are the
    /// record. A state saved after a report whose line never reached the file (a coordinator
    /// killed in between) would otherwise drop that report when the worker sends it again; a
    /// line written before the state was saved is taken as received, so it is not written twice.
    public mutating func reconcile(with history: RunHistory) {
        for i in members.indices {
            members[i].lastReport = history.reports.last { $0.report.name == members[i].name }?.report
        }
    }

    /// Members a run keeps at most, counting those lost or gone (whose slots newcomers take over).
    public static let maxMembers = 256

    /// Heartbeat intervals in the timeout after which a silent member counts as lost.
    public static let heartbeatsPerTimeout = 3.0

    /// Seconds between heartbeats a worker should send: a third of the timeout.
    public var heartbeatInterval: Double { heartbeatTimeout / Self.heartbeatsPerTimeout }

    /// Admits a worker, or refuses it with the reason. The same name re-joining gets its old
    /// admission. `credential` (fresh and random, from the caller) is what the member must then
    /// present; a re-join replaces the old one.
    public mutating func join(_ request: JoinRequest, credential: String, now: Double) throws(CoordinatorRefusal) -> JoinReply {
        guard request.protocolVersion == coordinationProtocolVersion else {
            throw CoordinatorRefusal(status: 400, reason: "protocol version \(request.protocolVersion); this coordinator speaks \(coordinationProtocolVersion)")
        }
        guard constantTimeEqual(request.token, token) else {
            throw CoordinatorRefusal(status: 403, reason: "wrong token; use the token file the coordinator was started with")
        }
        guard Self.isValidName(request.name) else {
            throw CoordinatorRefusal(status: 400, reason: "a worker name must be 1 to 128 of A-Z a-z 0-9 . _ - and not start with . or -; "
                + "got \(loggable(request.name))")
        }
        guard (1...65535).contains(request.dataPort), !request.dataHost.isEmpty, request.dataHost.utf8.count <= 255 else {
            throw CoordinatorRefusal(status: 400, reason: "data address \(request.dataHost):\(request.dataPort) is not a host and port in 1...65535")
        }
        guard request.layoutHash == run.layoutHash else {
            throw CoordinatorRefusal(status: 409, reason: "the worker's model (layout \(request.layoutHash)) differs from the run's (layout \(run.layoutHash)); is it running the same Tributary version and config?")
        }
        // Not even a member's: a finished run has no ring to take it in.
        guard phase != .finished else { throw CoordinatorRefusal(status: 409, reason: "the run has finished") }
        if let i = members.firstIndex(where: { $0.name == request.name }) {
            members[i].host = request.dataHost
            members[i].port = request.dataPort
            members[i].credential = credential
            members[i].joins += 1
            members[i].lastSeen = now
            members[i].lastReport = nil
            members[i].state = .active
            emit(.rejoined, members[i].name, now: now, "joined again (join \(members[i].joins)), data port \(request.dataPort)")
            bumpEpoch(now: now)
            return reply(members[i], running: phase != .waiting)
        }
        // Before training the ring waits for exactly the expected workers; once it trains, more
        // may join (the others take them in at their next round), up to a bound.
        let limit = phase == .waiting ? run.expectedWorkers : Self.maxMembers
        if phase != .waiting && members.count >= limit,
           let gone = members.indices.filter({ members[$0].state != .active }).min(by: { members[$0].lastSeen < members[$1].lastSeen }) {
            // A lost or departed member's slot goes to the newcomer (the longest gone first), so
            // that churn cannot fill the run; the active members are never displaced.
            members.remove(at: gone)
        }
        guard members.count < limit else {
            let names = members.map(\.name).joined(separator: ", ")
            throw CoordinatorRefusal(status: 409, reason: phase == .waiting
                ? "the run is full: \(run.expectedWorkers) workers (\(names)); a restarted worker must re-join under its old name"
                : "the run has \(Self.maxMembers) members, the most it takes")
        }
        let running = phase != .waiting
        members.append(Member(name: request.name, admission: nextAdmission, credential: credential, host: request.dataHost,
                              port: request.dataPort, state: .active, joins: 1, lastSeen: now, joinedRunning: running))
        nextAdmission += 1
        emit(.joined, request.name, now: now, "admission \(nextAdmission - 1), data \(request.dataHost):\(request.dataPort)"
             + (running ? ", into the training ring" : ""))
        bumpEpoch(now: now)
        if phase == .waiting && activeCount == run.expectedWorkers {
            phase = .training
            emit(.trainingStarted, nil, now: now, "\(activeCount) workers: " + ring.members.map(\.name).joined(separator: ", "))
        }
        return reply(members[members.count - 1], running: running)
    }

    /// Names are shown in `/status`, `/metrics` and logs and become folder names: plain ASCII only.
    static func isValidName(_ name: String) -> Bool {
        guard (1...128).contains(name.utf8.count), let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            return false
        }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    /// Checks that a request carries the run's token (what `/v1/run` asks: the run id and layout it
    /// serves are what a data-plane hello needs, so they are not for everyone who can reach the port).
    public func authenticateRun(token presented: String?) throws(CoordinatorRefusal) {
        guard let presented else {
            throw CoordinatorRefusal(status: 401, reason: "the run's description needs the run's token "
                + "(Authorization: Bearer <the token file's contents>)")
        }
        guard constantTimeEqual(presented, token) else {
            throw CoordinatorRefusal(status: 401, reason: "wrong token; use the token file the coordinator was started with")
        }
    }

    /// Checks that a request for member `name` carries its credential (heartbeat, report, leave).
    public func authenticate(_ name: String, credential: String?) throws(CoordinatorRefusal) {
        let i = try index(of: name)
        guard let credential, constantTimeEqual(credential, members[i].credential) else {
            throw CoordinatorRefusal(status: 401, reason: "\(name)'s requests must carry the credential of its join reply "
                + "(Authorization: Bearer …); a restarted worker joins again")
        }
    }

    private func reply(_ member: Member, running: Bool) -> JoinReply {
        let source = members.first { $0.name == stateSource }?.ringMember
        return JoinReply(admission: member.admission, credential: member.credential, run: run, heartbeatSeconds: heartbeatInterval, joinsRunningRing: running, round: round, stateSource: source)
    }

    /// The newest report of an active member: the run's current round and who holds its state.
    private var newestActiveReport: WorkerReport? {
        members.filter { $0.state == .active }.compactMap(\.lastReport)
            .max { ($0.epoch ?? 0, $0.round, $1.name) < ($1.epoch ?? 0, $1.round, $0.name) }
    }

    /// The run's current round: the newest round an active member reported.
    public var round: Int? { newestActiveReport?.round }

    /// A new epoch: the ring changes, and the state a newcomer takes comes from the active member
    /// that reported the newest round (the first by name among equals).
    private mutating func bumpEpoch(now: Double, why: String? = nil) {
        epoch += 1
        brokenRing = nil
        stateSource = newestActiveReport?.name
        // Before training the joins are the news; once it trains, every new ring is a re-form.
        if phase == .training {
            emit(.ringChanged, nil, now: now, "epoch \(epoch)" + (why.map { " (\($0))" } ?? "") + ": "
                 + ring.members.map(\.name).joined(separator: ", "))
        }
    }

    /// A member's ring broke while the membership stayed as it was (a peer closed on it, or timed out without
    /// being lost): its workers wait for a newer epoch, which no join or loss would bring. Once every active
    /// member said so, or a heartbeat timeout after the first did (`expire`), the epoch moves on and they
    /// form the ring again. Counts as a heartbeat; a report about an older epoch changes nothing.
    public mutating func ringBroken(_ report: RingBroken, now: Double) throws(CoordinatorRefusal) -> RingView {
        let view = try heartbeat(report.name, now: now)
        guard phase == .training, report.epoch == epoch else { return view }
        var broken = brokenRing.flatMap { $0.epoch == epoch ? $0 : nil } ?? (epoch: epoch, names: [], since: now)
        broken.names.insert(report.name)
        brokenRing = broken
        let active = Set(members.filter { $0.state == .active }.map(\.name))
        if active.isSubset(of: broken.names) {
            bumpEpoch(now: now, why: "the ring of epoch \(report.epoch) broke: \(report.reason.prefix(RingBroken.maxReasonBytes))")
        }
        return ring
    }

    /// Hands the events emitted since the last call to the owner (the server records them).
    public mutating func takeEvents() -> [RunEvent] {
        defer { pendingEvents.removeAll() }
        return pendingEvents
    }

    private mutating func emit(_ kind: RunEvent.Kind, _ worker: String?, now: Double, _ detail: String) {
        pendingEvents.append(RunEvent(time: now, kind: kind, worker: worker, epoch: epoch, round: round, detail: detail))
        if pendingEvents.count > Self.maxPendingEvents { pendingEvents.removeFirst(pendingEvents.count - Self.maxPendingEvents) }
    }

    /// Records that `name` is alive and returns the ring as it is now.
    public mutating func heartbeat(_ name: String, now: Double) throws(CoordinatorRefusal) -> RingView {
        let i = try index(of: name)
        guard members[i].state != .left else {
            throw CoordinatorRefusal(status: 409, reason: "\(name) left the run; join again to come back")
        }
        if members[i].state == .lost {
            // A member lost near the end (frozen, say) that wakes after it has no ring to go back to: it
            // is told so and counts as gone, instead of reviving into a ring of one.
            guard phase != .finished else {
                members[i].state = .left
                emit(.left, name, now: now, "heard from again after the run finished; told to stop")
                throw CoordinatorRefusal(status: 409, reason: "the run finished while \(name) was lost (no heartbeat for over "
                    + "\(String(format: "%g", heartbeatTimeout)) s); its last rounds before that are in the model: stop this worker")
            }
            members[i].state = .active
            emit(.returned, name, now: now, "heard from again after \(String(format: "%.1f", now - members[i].lastSeen)) s")
            bumpEpoch(now: now)
        }
        members[i].lastSeen = now
        return ring
    }

    /// A worker says goodbye.
    public mutating func leave(_ name: String, now: Double) throws(CoordinatorRefusal) {
        let i = try index(of: name)
        if members[i].state != .left {
            members[i].state = .left
            emit(.left, name, now: now, "said goodbye")
            bumpEpoch(now: now)
        }
    }

    /// Stores a worker's round report (and counts as a heartbeat). Reports travel in the
    /// background, so one older than the stored one is dropped.
    @discardableResult
    public mutating func report(_ report: WorkerReport, now: Double) throws(CoordinatorRefusal) -> Bool {
        _ = try heartbeat(report.name, now: now)
        let i = try index(of: report.name)
        if let last = members[i].lastReport, (last.epoch ?? 0) >= (report.epoch ?? 0), last.round >= report.round || last.finished { return false }
        if let last = members[i].lastReport, report.round <= last.round {
            emit(.resumed, report.name, now: now, "went back to round \(report.round + 1) from \(last.round + 1) in ring epoch \(report.epoch ?? 0)")
        }
        members[i].lastReport = report
        if let rejection = report.rejectedUpdate, rejection.round != lastRejectedRound || report.epoch != lastRejectedEpoch {
            // Every worker reports the same rejection: one event.
            (lastRejectedRound, lastRejectedEpoch) = (rejection.round, report.epoch)
            let named = rejection.workers.isEmpty ? "no single worker stood out" : "named: " + rejection.workers.joined(separator: ", ")
            emit(.updateRejected, rejection.workers.first, now: now, "round \(rejection.round + 1)'s update kept out of the shared "
                 + "model (\(rejection.reason)); \(named)")
        }
        if report.checkpointSaved == true {
            emit(.checkpoint, report.name, now: now, "shared model saved after round \(report.round + 1) of \(report.rounds)")
        }
        // Finished when every active worker has finished, except one that joined the training
        // ring too late to be taken in (it has never reported): it does not hold the run open.
        let counted = members.filter { $0.state == .active && !($0.joinedRunning && $0.lastReport == nil) }
        if phase != .finished, !counted.isEmpty, counted.allSatisfy({ $0.lastReport?.finished == true }) {
            phase = .finished
            let validation = report.validationLoss.map { String(format: ", validation loss %.4f", $0) } ?? ""
            emit(.finished, nil, now: now, "every worker reported its last round (\(report.rounds))" + validation)
        }
        return true
    }

    /// The place of `name` among every member that joined, lost ones too, by name (the ring
    /// orders its active members by name); nil if it never joined.
    public func positionByName(of name: String) -> Int? { members.map(\.name).sorted().firstIndex(of: name) }

    /// Marks members not heard from within the timeout as lost; returns their names.
    @discardableResult
    public mutating func expire(now: Double) -> [String] {
        var lost: [String] = []
        for i in members.indices where members[i].state == .active && now - members[i].lastSeen > heartbeatTimeout {
            members[i].state = .lost
            lost.append(members[i].name)
        }
        for name in lost { emit(.lost, name, now: now, "no heartbeat for over \(String(format: "%g", heartbeatTimeout)) s") }
        if !lost.isEmpty {
            bumpEpoch(now: now)
        } else if let broken = brokenRing, broken.epoch == epoch, now - broken.since > heartbeatTimeout {
            bumpEpoch(now: now, why: "the ring of epoch \(epoch) broke \(String(format: "%.0f", now - broken.since)) s ago; "
                      + "\(broken.names.sorted().joined(separator: ", ")) waited for a new one")
        }
        return lost
    }

    /// Active members in the ring's order, and whether the ring can form: every expected worker
    /// before training starts, whoever is active after (a lost worker's peers go on without it).
    /// The order is by name, not by who joined first: the same workers always form the same
    /// ring, so a run and its resumption (or a rerun) sum their vectors in the same order.
    public var ring: RingView {
        let active = members.filter { $0.state == .active }.sorted { $0.name < $1.name }
        let ready = phase == .waiting ? active.count == run.expectedWorkers : !active.isEmpty
        return RingView(epoch: epoch, ready: ready,
                        members: active.map(\.ringMember),
                        round: round, stateSource: stateSource)
    }

    /// Everything `/status` shows.
    public func status(now: Double) -> StatusReport {
        StatusReport(runFingerprint: Self.fingerprint(of: run.runID), phase: phase, epoch: epoch, expectedWorkers: run.expectedWorkers,
                     members: members.map {
                         MemberStatus(name: $0.name, admission: $0.admission, state: $0.state, host: $0.host, port: $0.port, joins: $0.joins,
                                      secondsSinceSeen: max(0, now - $0.lastSeen), lastReport: $0.lastReport)
                     },
                     round: round, stateSource: stateSource)
    }

    private var activeCount: Int { members.count { $0.state == .active } }

    /// What `/status` and the dashboard call the run: a hash of its id, to tell runs apart without
    /// giving away the id a data-plane hello must carry.
    static func fingerprint(of runID: UInt64) -> String {
        var hasher = FNV1a()
        withUnsafeBytes(of: runID.littleEndian) { hasher.add($0) }
        return String(hex16(hasher.value).prefix(8))
    }

    private func index(of name: String) throws(CoordinatorRefusal) -> Int {
        guard let i = members.firstIndex(where: { $0.name == name }) else {
            throw CoordinatorRefusal(status: 404, reason: "no worker named '\(loggable(name))' has joined; join first")
        }
        return i
    }
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
    for i in 0..<max(x.count, y.count) {
        difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return difference == 0 && x.count == y.count
}

/// `text` safe for a log line or an error message: at most 64 characters, control, format
/// (bidirectional overrides) and non-ASCII characters escaped, so a name cannot forge lines or
/// hide what it is.
public func loggable(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(64) {
        out += (0x20..<0x7F).contains(scalar.value) ? String(scalar) : "\\u{\(String(scalar.value, radix: 16))}"
    }
    return text.unicodeScalars.count > 64 ? out + "… (\(text.utf8.count) bytes)" : out
}
