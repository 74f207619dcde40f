import Collectives
import Coordination
import Foundation
import NIOPosix
import Strategies
import Synchronization
import Training
import Transport

/// Rings of in-process workers joined by `MemoryLink`s: the strategies run as they do between
/// processes, without sockets. Worker i's links are described as "w(i±1)" to it.
func memoryRing(_ n: Int, timeoutMilliseconds: Int64 = 20_000) -> [Ring] {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    var next = [MemoryLink?](repeating: nil, count: n), previous = next
    for i in 0..<n where n > 1 {
        let (a, b) = MemoryLink.pair("w\(i)", "w\((i + 1) % n)", eventLoop: loop)
        next[i] = a
        previous[(i + 1) % n] = b
    }
    return (0..<n).map {
        var ring = Ring(rank: $0, size: n, next: next[$0], previous: previous[$0], runID: 7)
        ring.timeout = .milliseconds(timeoutMilliseconds)
        return ring
    }
}

/// A tiny model on the Markov source: a step takes about a millisecond.
func tinyConfig(_ strategy: String, steps: Int, checkpointInterval: Int = 0, optimizer: String = "adamw") throws -> TrainConfig {
    try TrainConfig.load(yaml: """
        model: {vocabSize: 32, contextLength: 16, layers: 1, heads: 2, channels: 16}
        batchSize: 2
        sequenceLength: 16
        steps: \(steps)
        optimizer: {name: \(optimizer), learningRate: 0.01, warmupSteps: 1}
        data: {markovVocabulary: 32, trainTokens: 20000, validationTokens: 2048}
        evaluation: {interval: 0, batches: 2}
        checkpoint: {interval: \(checkpointInterval), keep: 2}
        strategy: \(strategy)
        threads: 1
        """)
}

/// Lets a non-Sendable trainer cross into a child task that alone uses it.
struct Handed<T>: @unchecked Sendable { let value: T }

/// How one in-process worker's run ended: its reports and its error, if any.
struct WorkerOutcome {
    var reports: [WorkerReport]
    var error: (any Error)?
    var final: WorkerReport? { reports.last }
}

/// Runs every trainer to its end (or its error) concurrently; outcomes in the trainers' order.
func runTogether(_ trainers: [DistributedTrainer], resume: Bool = false) async -> [WorkerOutcome] {
    await withTaskGroup(of: (Int, WorkerOutcome).self) { group in
        for (i, trainer) in trainers.enumerated() {
            let handed = Handed(value: trainer)
            group.addTask {
                let reports = Mutex<[WorkerReport]>([])
                do {
                    try await handed.value.run(resume: resume) { r in reports.withLock { $0.append(r) } }
                    return (i, WorkerOutcome(reports: reports.withLock { $0 }, error: nil))
                } catch {
                    return (i, WorkerOutcome(reports: reports.withLock { $0 }, error: error))
                }
            }
        }
        var outcomes = [WorkerOutcome?](repeating: nil, count: trainers.count)
        for await (i, outcome) in group { outcomes[i] = outcome }
        return outcomes.map { $0! }
    }
}

/// Trainers for a ring, named w0, w1, …; `secondsPerCall` gives each worker a fixed time for
/// every piece of compute (a fake compute clock), else compute is measured.
func trainers(_ config: TrainConfig, ring: [Ring], memories: [RoundMemory]? = nil, folder: URL? = nil,
              secondsPerCall: [Double]? = nil) throws -> [DistributedTrainer] {
    try ring.enumerated().map { i, r in
        let state = folder.map { CheckpointStore(directory: $0.appendingPathComponent("w\(i)"), keep: 2) }
        let trainer = try DistributedTrainer(config: config, ring: r, name: "w\(i)", speed: 1, checkpoints: nil, workerState: state,
                                             memory: memories?[i], timing: secondsPerCall.map { FixedComputeTime(seconds: $0[i]) })
        trainer.memberNames = ring.indices.map { "w\($0)" }
        return trainer
    }
}

/// Every piece of compute counts as `seconds`, however long it really took: time rounds replay exactly.
struct FixedComputeTime: ComputeTiming {
    let seconds: Double
    func run<T>(_ work: () throws -> T) async throws -> (T, seconds: Double) { (try work(), seconds) }
}
