import Foundation

/// Version of the coordinator's HTTP/JSON protocol; a worker of another version is refused.
public let coordinationProtocolVersion = 2

/// What a worker sends to join a run.
public struct JoinRequest: Codable, Sendable, Equatable {
    public var protocolVersion = coordinationProtocolVersion
    /// The shared secret from the token file.
    public var token: String
    /// A stable name: a worker that restarts under the same name gets its admission back.
    public var name: String
    /// Hex layout hash of the model the worker built from the run's config.
    public var layoutHash: String
    /// Where peers reach this worker's data-plane listener.
    public var dataHost: String
    public var dataPort: Int
    /// The public half of the key the worker made for its ring connections (PEM, P-256): the
    /// coordinator of a TLS run signs it into the worker's certificate.
    public var publicKeyPEM: String?

    public init(token: String, name: String, layoutHash: String, dataHost: String, dataPort: Int, publicKeyPEM: String? = nil) {
        self.token = token
        self.name = name
        self.layoutHash = layoutHash
        self.dataHost = dataHost
        self.dataPort = dataPort
        self.publicKeyPEM = publicKeyPEM
    }
}

/// The run as the coordinator describes it to every worker.
public struct RunDescription: Codable, Sendable, Equatable {
    /// Random id of this run; it goes into every data-plane frame.
    public var runID: UInt64
    /// Workers the ring waits for before training starts.
    public var expectedWorkers: Int
    /// The run's training config, as YAML (workers parse it with the same rules as `train`).
    public var configYAML: String
    /// Hex layout hash of the run's model; a worker whose model differs is refused.
    public var layoutHash: String

    public init(runID: UInt64, expectedWorkers: Int, configYAML: String, layoutHash: String) {
        self.runID = runID
        self.expectedWorkers = expectedWorkers
        self.configYAML = configYAML
        self.layoutHash = layoutHash
    }
}

/// The coordinator's answer to an accepted join.
public struct JoinReply: Codable, Sendable, Equatable {
    /// When the coordinator admitted this name (0 first), kept for the run; not the position in
    /// a ring, which changes as workers come and go.
    public var admission: Int
    /// This member's secret for heartbeats, reports and leaving (`Authorization: Bearer …`):
    /// its name alone is public (`/status` lists it). A new one at every join.
    public var credential: String
    public var run: RunDescription
    /// Seconds between heartbeats the coordinator expects.
    public var heartbeatSeconds: Double
    /// Whether the ring was already training when this worker joined: it must then agree on
    /// the state to go on from with the others, as a resuming worker does.
    public var joinsRunningRing: Bool?
    /// The run's current round (the newest any member reported), when training has started.
    public var round: Int?
    /// The member whose state a worker joining a running ring takes: the one that reported the
    /// newest round when the ring last changed.
    public var stateSource: RingMember?
    /// In a TLS run: the worker's certificate for its ring connections (PEM, issued to its name
    /// for the key it sent) and the run's authority, the only one its peers' certificates may chain to.
    public var certificatePEM: String?
    public var authorityPEM: String?
}

/// One member of the ring as every worker sees it.
public struct RingMember: Codable, Sendable, Equatable {
    /// When the coordinator admitted this member; its ring position is its index in the view.
    public var admission: Int
    public var name: String
    public var host: String
    public var port: Int
}

/// Who is in the ring now. `epoch` changes whenever the set of active members changes.
public struct RingView: Codable, Sendable, Equatable {
    public var epoch: Int
    /// Whether every expected worker is present, so the ring can form.
    public var ready: Bool
    /// Active members in ring order (a member's index is its ring position, its rank).
    public var members: [RingMember]
    /// The run's current round (the newest any member reported), when training has started.
    public var round: Int?
    /// Name of the member whose state workers without any take when this ring forms; fixed for
    /// an epoch, so every member of one ring reads the same.
    public var stateSource: String?
}

/// What a worker did in one round, sent after every round.
public struct WorkerReport: Codable, Sendable, Equatable {
    public var name: String
    public var round: Int
    public var rounds: Int
    /// Optimizer steps this worker has done (inner steps for DiLoCo).
    public var steps: Int
    /// Training tokens this worker has processed in total.
    public var tokens: Int
    /// Mean training loss over the round's steps.
    public var loss: Double
    /// Validation loss of the shared parameters, when measured this round.
    public var validationLoss: Double?
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Seconds spent computing (forward, backward, optimizer, emulated slowness) in total.
    public var computeSeconds: Double
    /// Seconds spent in collectives or waiting for peers in total.
    public var waitSeconds: Double
    /// Seconds since this worker started training.
    public var elapsedSeconds: Double
    /// This worker's measured training speed alone (tokens per compute second).
    public var tokensPerComputeSecond: Double
    /// Whether this was the worker's last round.
    public var finished: Bool
    /// FNV-1a of the shared parameters after the round: equal on every worker when they agree.
    public var parameterHash: String?
    /// The ring epoch the round ran in: after a worker is lost the others go back to their last
    /// saved round, and their reports of a later epoch replace those of the old one.
    public var epoch: Int?
    /// The emulated link's rate on this worker's connections, in bytes per second; nil when not
    /// shaped. Dashboards draw the bytes it sent against it.
    public var linkBytesPerSecond: Double?
    /// Whether this round's end saved the shared model to a checkpoint.
    public var checkpointSaved: Bool?
    /// The round's update, when the workers rejected it (not finite, or far outside the recent ones).
    public var rejectedUpdate: UpdateRejection?
    /// Tokens this worker process trained on since it started, discarded rounds included (a
    /// restarted process counts from zero).
    public var computedTokens: Int?
    /// Bytes per second this worker sent in its busiest tenth of a second: the rate it needed from the link.
    public var peakBytesPerSecond: Double?
    /// The most bytes this worker sent in any one second.
    public var peakBytesInASecond: Double?

    public init(name: String, round: Int, rounds: Int, steps: Int, tokens: Int, loss: Double, validationLoss: Double?,
                bytesSent: Int, bytesReceived: Int, computeSeconds: Double, waitSeconds: Double, elapsedSeconds: Double,
                tokensPerComputeSecond: Double, finished: Bool, parameterHash: String? = nil) {
        self.name = name
        self.round = round
        self.rounds = rounds
        self.steps = steps
        self.tokens = tokens
        self.loss = loss
        self.validationLoss = validationLoss
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.computeSeconds = computeSeconds
        self.waitSeconds = waitSeconds
        self.elapsedSeconds = elapsedSeconds
        self.tokensPerComputeSecond = tokensPerComputeSecond
        self.finished = finished
        self.parameterHash = parameterHash
    }
}

/// A round's update that never reached the shared model, and the workers whose contributions
/// were named for it (none when no single one stood out).
public struct UpdateRejection: Codable, Sendable, Equatable {
    /// The round, from 0.
    public var round: Int
    /// Why, with numbers: "not finite", or the norm against the recent median.
    public var reason: String
    public var workers: [String]

    public init(round: Int, reason: String, workers: [String]) {
        self.round = round
        self.reason = reason
        self.workers = workers
    }
}

/// A worker naming itself (heartbeat, leave).
public struct WorkerName: Codable, Sendable, Equatable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// A worker's ring of `epoch` broke while it trained (a peer closed on it or timed out) and it waits for a new one.
public struct RingBroken: Codable, Sendable, Equatable {
    public var name: String
    public var epoch: Int
    /// What the worker saw, for the run's events (cut to `maxReasonBytes` characters).
    public var reason: String

    public static let maxReasonBytes = 500

    public init(name: String, epoch: Int, reason: String) {
        self.name = name
        self.epoch = epoch
        self.reason = reason
    }
}

/// Lifecycle of a member.
public enum MemberState: String, Codable, Sendable {
    /// Joined and heard from within the heartbeat timeout.
    case active
    /// Said goodbye.
    case left
    /// Missed heartbeats for longer than the timeout.
    case lost
}

/// A member as `/status` shows it.
public struct MemberStatus: Codable, Sendable, Equatable {
    public var name: String
    /// When the coordinator admitted this name (0 first).
    public var admission: Int
    public var state: MemberState
    public var host: String
    public var port: Int
    /// Times this name joined (more than 1 after a restart).
    public var joins: Int
    /// Seconds since the coordinator last heard from it.
    public var secondsSinceSeen: Double
    public var lastReport: WorkerReport?
}

/// Phase of the run.
public enum RunPhase: String, Codable, Sendable {
    /// Waiting for the expected workers to join.
    case waiting
    case training
    /// Every worker reported its last round.
    case finished
}

/// The body of `/status`.
public struct StatusReport: Codable, Sendable, Equatable {
    /// A hash of the run's id (not the id: that is for the run's token holders, see `/v1/run`).
    public var runFingerprint: String
    public var phase: RunPhase
    public var epoch: Int
    public var expectedWorkers: Int
    public var members: [MemberStatus]
    /// The run's current round (the newest any member reported), when training has started.
    public var round: Int?
    /// Name of the member whose state a joining worker takes in this epoch.
    public var stateSource: String?
}

/// An error body: every 4xx and 5xx answer carries one.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}
