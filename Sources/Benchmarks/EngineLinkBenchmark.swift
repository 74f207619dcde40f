import Basics
import Coordination
import Dispatch
import EngineLink
import Foundation
import Logging
import ModelCore
import Training

/// What the engine link costs per DiLoCo round against what a native worker's round costs, measured in one
/// run: the binding's round trip (parameters into the shared buffer, a message each way, the engine's copy
/// into its model and back, the buffer back into the parameters) with an engine that trains nothing, and
/// the native engine's `innerSteps` training steps of the same model.
public struct EngineLinkBenchmark {
    public struct Report: Codable {
        public let parameters: Int
        public let innerSteps: Int
        public let engine: String
        /// Median seconds of one round trip through the link.
        public let linkSecondsPerRound: Double
        /// Seconds of one native round (innerSteps training steps, median step × steps).
        public let nativeSecondsPerRound: Double
        /// linkSecondsPerRound / nativeSecondsPerRound.
        public let fraction: Double
    }

    public let config: TrainConfig
    public let rounds: Int
    /// The Python package's folder (python/ in the repository).
    public let package: URL
    public let torch: Bool

    public init(config: TrainConfig, rounds: Int, package: URL, torch: Bool) {
        var config = config
        // Timing does not depend on the tokens: the synthetic source needs no prepared shards.
        config.data.prepared = nil
        config.data.markovVocabulary = min(config.data.markovVocabulary, config.model.vocabSize)
        self.config = config
        self.rounds = rounds
        self.package = package
        self.torch = torch
    }

    public func run(log: (String) -> Void) async throws -> Report {
        let layout = ParameterLayout(config: config.model)
        let h = config.strategy.innerSteps
        log("model \(layout.count) parameters, \(config.batchSize)×\(config.sequenceLength) tokens per step, \(h) inner steps per round")

        let trainer = try Trainer(config: config)
        _ = try trainer.trainStep()
        var stepSeconds: [Double] = []
        for _ in 0..<h {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try trainer.trainStep()
            stepSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let native = median(stepSeconds) * Double(h)
        log(String(format: "native round: %.3f s (%d steps, median step %.1f ms)", native, h, median(stepSeconds) * 1000))

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-bench-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let socket = folder.appendingPathComponent("engine.sock").path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-m", "tributary.bench", "--socket", socket] + (torch ? ["--torch"] : [])
        python.environment = ProcessInfo.processInfo.environment.merging(["PYTHONPATH": package.path]) { $1 }
        try python.run()
        defer { if python.isRunning { python.terminate() } }

        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let parameters = trainer.model.parameters.buffer
        var linkSeconds: [Double] = []
        try await ExternalEngine.serve(path: socket, name: "bench", patience: .seconds(60), logger: logger) { engine in
            try await engine.begin(layout: layout, config: config)
            for round in 0..<(rounds + 1) {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try await engine.trainRound(round, steps: h, budgetSeconds: nil, parameters: parameters)
                // The first round includes the engine's start-up (imports, model construction).
                if round > 0 { linkSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            let report = WorkerReport(name: "bench", round: rounds, rounds: rounds + 1, steps: 0, tokens: 0, loss: 0, validationLoss: nil,
                                      bytesSent: 0, bytesReceived: 0, computeSeconds: 0, waitSeconds: 0, elapsedSeconds: 0,
                                      tokensPerComputeSecond: 0, finished: true)
            try await engine.runFinished(report, parameters: UnsafeBufferPointer(parameters))
        }
        python.waitUntilExit()
        guard python.terminationStatus == 0 else {
            throw EngineLinkError("the benchmark's Python engine exited with status \(python.terminationStatus)"
                + (torch ? " (does python3 have torch and transformers?)" : " (does python3 have numpy?)"))
        }
        let link = median(linkSeconds)
        let engine = torch ? "PyTorch GPT-2 (CPU)" : "NumPy"
        log(String(format: "link round trip with a %@ engine: %.2f ms (median of %d) = %.3f%% of the native round",
                   engine, link * 1000, linkSeconds.count, 100 * link / native))
        return Report(parameters: layout.count, innerSteps: h, engine: engine, linkSecondsPerRound: link,
                      nativeSecondsPerRound: native, fraction: link / native)
    }
}
