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
            let active = stragglers.filter { step >= $0.fromStep }
            var siteDone: [Double] = []
            for site in plan.sites {
                let finish = groupFinish(replicas: site.layout.dataParallel, lost: lost[site.site] ?? [], sequences: site.sequencesPerStep,
                                         microBatch: site.layout.microBatch, stages: stages(of: site),
                                         stragglers: active.filter { $0.site == site.site }, events: &events)
                siteDone.append(clock + finish + site.cost.dataParallelSeconds + site.cost.optimizerSeconds)
            }
            if let span = plan.pipelineAcrossSites {
                // A device lost anywhere stops its replica; a straggler names its stage's site.
                let gone = span.order.reduce(into: Set<Int>()) { $0.formUnion(lost[$1] ?? []) }
                let slow = active.filter { $0.stage < span.stages.count && span.stages[$0.stage].site == $0.site }
                let finish = groupFinish(replicas: span.replicas, lost: gone, sequences: plan.globalBatchSequences, microBatch: span.microBatch,
                                         stages: stages(of: span), stragglers: slow, events: &events)
                siteDone.append(clock + finish + span.dataParallelSeconds + span.optimizerSeconds)
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
                        let done = start + chunk / (link.bytesPerSecond * cluster.linkEfficiency)
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

    /// When the slowest replica of a group ends its pipeline: the group's sequences spread over
    /// the replicas still alive; the plain replica and each one a straggler singles out are
    /// replayed, the others are twins of the plain one.
    static func groupFinish(replicas: Int, lost: Set<Int>, sequences: Int, microBatch: Int, stages: [StageTiming], stragglers: [Straggler],
                            events: inout Int) -> Double {
        let alive = max(1, replicas - lost.count)
        let micro = max(1, Int((Double(sequences) / Double(alive) / Double(microBatch)).rounded(.up)))
        let special = Set(stragglers.map(\.replica)).subtracting(lost).filter { $0 >= 0 }
        var finish = 0.0
        for replica in [nil] + special.sorted().map(Optional.some) {
            let (end, count) = pipeline(stages: stages, microBatches: micro, slowdowns: stragglers.filter { $0.replica == replica })
            events += count
            finish = max(finish, end)
        }
        return finish
    }

    /// What one stage of a replica does per micro-batch.
    struct StageTiming {
        var forward: Double
        var backward: Double
        /// Transmission to the next stage (the stage is busy) and the hop's latency.
        var sendToNext: Double
        var latencyToNext: Double
    }

    /// A site's uniform stages: compute split 1/3 forward, 2/3 backward (3 passes; 4 with
    /// recomputation, the extra forward on the backward side).
    static func stages(of site: SitePlan) -> [StageTiming] {
        let c = site.cost
        let passes = site.layout.recompute ? 4.0 : 3.0
        let work = c.stageSeconds - c.pipelineSendSeconds - 2 * c.pipelineHopLatency
        let p = site.layout.pipelineStages
        return (0..<p).map { i in
            StageTiming(forward: work / passes, backward: work - work / passes,
                        sendToNext: i < p - 1 ? c.pipelineSendSeconds / 2 : 0, latencyToNext: i < p - 1 ? c.pipelineHopLatency : 0)
        }
    }

    /// The stages of a pipeline through several sites, each with its own layers and links.
    static func stages(of span: SpanningPipeline) -> [StageTiming] {
        let passes = span.recompute ? 4.0 : 3.0
        return span.stages.map { s in
            StageTiming(forward: s.computeSeconds / passes, backward: s.computeSeconds - s.computeSeconds / passes,
                        sendToNext: s.sendToNextSeconds, latencyToNext: s.latencyToNext)
        }
    }

    /// One replica's 1F1B schedule: returns when its last backward ends, and the events it took.
    /// A stage that passes a micro-batch on is busy while it transmits, and the receiver gets it
    /// a hop latency later; `slowdowns` multiply a stage's compute.
    static func pipeline(stages: [StageTiming], microBatches m: Int, slowdowns: [Straggler]) -> (Double, Int) {
        let p = stages.count
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
                        ready = i == 0 ? 0 : forwardDone[i - 1][j] + stages[i - 1].latencyToNext
                        let start = max(ready, free[i])
                        // Done once its activation has left for the next stage.
                        forwardDone[i][j] = start + stages[i].forward * factor[i] + stages[i].sendToNext
                        free[i] = forwardDone[i][j]
                    } else {
                        guard forwardDone[i][j] > 0, i == p - 1 || backwardDone[i + 1][j] > 0 else { break }
                        ready = i == p - 1 ? forwardDone[i][j] : backwardDone[i + 1][j] + stages[i].latencyToNext
                        let start = max(ready, free[i])
                        backwardDone[i][j] = start + stages[i].backward * factor[i] + (i > 0 ? stages[i - 1].sendToNext : 0)
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
