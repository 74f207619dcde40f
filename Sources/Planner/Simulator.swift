import Foundation

/// A device that runs slower than planned from some step on.
public struct Straggler: Codable, Sendable, Equatable {
    public var site: String
    /// Which data-parallel replica of the site, and which pipeline stage of it.
    public var replica: Int
    public var stage: Int
    /// Compute takes this many times longer (2 = half speed).
    public var slowdown: Double
    public var fromStep: Int

    public init(site: String, replica: Int = 0, stage: Int = 0, slowdown: Double, fromStep: Int = 0) {
        self.site = site
        self.replica = replica
        self.stage = stage
        self.slowdown = slowdown
        self.fromStep = fromStep
    }
}

/// A device lost at the start of a step: its whole replica (pipeline) stops, and the site's
/// remaining replicas take over its sequences.
public struct Failure: Codable, Sendable, Equatable {
    public var site: String
    public var replica: Int
    public var atStep: Int

    public init(site: String, replica: Int = 0, atStep: Int) {
        self.site = site
        self.replica = replica
        self.atStep = atStep
    }
}

/// What the simulator observed.
public struct SimulationReport: Codable, Sendable, Equatable {
    public var stepSeconds: [Double]
    public var meanStepSeconds: Double
    /// The analytic model's step time for the same plan, for comparison.
    public var analyticStepSeconds: Double
    public var events: Int
    public var notes: [String]
}

/// Replays a plan as discrete events: every micro-batch's forward and backward on every stage
/// (1F1B order), the sends between stages on each replica's links, the data-parallel all-reduce
/// after each stage's last backward, and the cross-site ring on the shared inter-site links.
/// Replicas that nothing singles out are simulated once and stand for all their twins.
public enum Simulator {
    public static func run(plan: Plan, cluster: ClusterSpec, steps: Int, stragglers: [Straggler] = [], failures: [Failure] = []) -> SimulationReport {
        var times: [Double] = []
        var events = 0
        var notes: [String] = []
        var lost: [String: Set<Int>] = [:]
        for f in failures { notes.append("\(f.site) replica \(f.replica) lost at step \(f.atStep): its sequences move to the site's other replicas") }
        // Inter-site links are shared resources: when each is free again.
        var linkFree: [String: Double] = [:]
        var clock = 0.0
        for step in 0..<steps {
            for f in failures where f.atStep == step { lost[f.site, default: []].insert(f.replica) }
            var siteDone: [Double] = []
            for site in plan.sites {
                let gone = lost[site.site] ?? []
                let alive = max(1, site.layout.dataParallel - gone.count)
                // The site's sequences spread over the replicas still alive.
                let perReplica = Double(site.sequencesPerStep) / Double(alive)
                let micro = max(1, Int((perReplica / Double(site.layout.microBatch)).rounded(.up)))
                // Distinct replicas: the plain one, and each one a straggler singles out.
                var special = Set(stragglers.filter { $0.site == site.site && step >= $0.fromStep && !gone.contains($0.replica) }.map(\.replica))
                special.remove(-1)
                var finish = 0.0
                for replica in [nil] + special.sorted().map(Optional.some) {
                    let slow = stragglers.filter { $0.site == site.site && step >= $0.fromStep && $0.replica == replica }
                    let (end, count) = pipeline(site: site, microBatches: micro, slowdowns: slow)
                    events += count
                    finish = max(finish, end)
                }
                siteDone.append(clock + finish + site.cost.dataParallelSeconds + site.cost.optimizerSeconds)
            }
            var end = siteDone.max() ?? clock
            // Cross-site ring on the sites' links, on sync steps.
            let ring = plan.crossSiteRing
            if ring.count > 1, (step + 1) % plan.sync.interval == 0 {
                let k = ring.count
                let chunk = plan.crossSiteBytesPerSync / Double(2 * (k - 1))
                var ready = end
                for _ in 0..<(2 * (k - 1)) {
                    var hopDone = ready
                    for i in 0..<k {
                        let a = ring[i], b = ring[(i + 1) % k]
                        let link = cluster.link(a, b)
                        let key = a < b ? "\(a)|\(b)|\(i)" : "\(b)|\(a)|\(i)"
                        let start = max(ready, linkFree[key] ?? 0)
                        let done = start + chunk / (link.bytesPerSecond * CostModel.linkEfficiency)
                        linkFree[key] = done
                        hopDone = max(hopDone, done + link.latency)
                        events += 1
                    }
                    ready = hopDone
                }
                end = ready
            }
            times.append(end - clock)
            clock = end
        }
        let mean = times.reduce(0, +) / Double(max(1, times.count))
        return SimulationReport(stepSeconds: times, meanStepSeconds: mean, analyticStepSeconds: plan.stepSeconds, events: events, notes: notes)
    }

    /// One replica's 1F1B schedule: returns when its last backward ends, and the events it took.
    /// Stage compute is split 1/3 forward, 2/3 backward (3 passes; 4 with recomputation, the
    /// extra forward on the backward side); a stage that passes a micro-batch on is busy while
    /// it transmits, and the receiver gets it a hop latency later.
    static func pipeline(site: SitePlan, microBatches m: Int, slowdowns: [Straggler]) -> (Double, Int) {
        let p = site.layout.pipelineStages
        let c = site.cost
        let work = c.stageSeconds - c.pipelineSendSeconds - 2 * c.pipelineHopLatency
        let passes = site.layout.recompute ? 4.0 : 3.0
        let forward = work / passes, backward = work - forward
        let send = c.pipelineSendSeconds / 2, hop = c.pipelineHopLatency
        var factor = [Double](repeating: 1, count: p)
        for s in slowdowns where s.stage < p { factor[s.stage] *= s.slowdown }
        // When each stage is free, when micro-batch j's forward leaves stage i, when its
        // backward leaves stage i.
        var free = [Double](repeating: 0, count: p)
        var forwardDone = [[Double]](repeating: [Double](repeating: 0, count: m), count: p)
        var backwardDone = [[Double]](repeating: [Double](repeating: 0, count: m), count: p)
        var events = 0
        // 1F1B order per stage: (p − i) warm-up forwards, then alternate, then drain backwards.
        var order: [[(isForward: Bool, j: Int)]] = []
        for i in 0..<p {
            let warm = min(p - i, m)
            var ops: [(Bool, Int)] = (0..<warm).map { (true, $0) }
            var f = warm, b = 0
            while b < m {
                ops.append((false, b)); b += 1
                if f < m { ops.append((true, f)); f += 1 }
            }
            order.append(ops)
        }
        // Process stages' op lists in dependency order until all are done.
        var next = [Int](repeating: 0, count: p)
        var progress = true
        while progress {
            progress = false
            for i in 0..<p {
                while next[i] < order[i].count {
                    let (isForward, j) = order[i][next[i]]
                    var ready: Double
                    if isForward {
                        guard i == 0 || forwardDone[i - 1][j] > 0 else { break }
                        ready = i == 0 ? 0 : forwardDone[i - 1][j] + hop
                        let start = max(ready, free[i])
                        // Done once its activation has left for the next stage.
                        forwardDone[i][j] = start + forward * factor[i] + (i < p - 1 ? send : 0)
                        free[i] = forwardDone[i][j]
                    } else {
                        guard forwardDone[i][j] > 0, i == p - 1 || backwardDone[i + 1][j] > 0 else { break }
                        ready = i == p - 1 ? forwardDone[i][j] : backwardDone[i + 1][j] + hop
                        let start = max(ready, free[i])
                        backwardDone[i][j] = start + backward * factor[i] + (i > 0 ? send : 0)
                        free[i] = backwardDone[i][j]
                    }
                    next[i] += 1
                    events += 1
                    progress = true
                }
            }
        }
        return (free.max() ?? 0, events)
    }
}
