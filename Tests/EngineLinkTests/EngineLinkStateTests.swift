import EngineLink
import ModelCore
import Strategies
import Training
import XCTest

/// The engine link's decisions, driven by messages without a socket.
final class EngineLinkStateTests: XCTestCase {
    let layout = ParameterLayout(config: GPTConfig(vocabSize: 32, contextLength: 16, layers: 1, heads: 2, channels: 8))

    func hello(_ tensors: [EngineTensor]? = nil, version: Int? = EngineMessage.version) -> EngineMessage {
        var m = EngineMessage(kind: .hello)
        m.version = version
        m.layout = tensors ?? layout.tensors.map { EngineTensor(name: $0.name, shape: $0.shape) }
        return m
    }

    func trained(round: Int, steps: Int?, loss: Double? = 2.5, seconds: Double? = 0.1) -> EngineMessage {
        var m = EngineMessage(kind: .trained)
        (m.round, m.steps, m.loss, m.seconds) = (round, steps, loss, seconds)
        return m
    }

    func testAHelloThenRoundsOfTraining() throws {
        var state = EngineLinkState()
        let theirs = try state.hello(hello())
        XCTAssertNil(layout.mismatch(with: theirs))
        for round in 0..<3 {
            try state.startRound(round, steps: 5)
            XCTAssertEqual(try state.trained(trained(round: round, steps: 5)), InnerRound(steps: 5, meanLoss: 2.5, computeSeconds: 0.1))
        }
        XCTAssertEqual(state.phase, .ready)
    }

    func testAHelloOfAnotherVersionOrWithoutALayoutIsRefusedWithTheFix() {
        var state = EngineLinkState()
        XCTAssertThrowsError(try state.hello(hello(version: 2))) {
            XCTAssertTrue("\($0)".contains("install the Python package from the same tributary checkout"), "\($0)")
        }
        XCTAssertThrowsError(try state.hello(hello([]))) { XCTAssertTrue("\($0)".contains("has no layout"), "\($0)") }
        XCTAssertThrowsError(try state.hello(hello([EngineTensor(name: "w", shape: [3, 0])]))) {
            XCTAssertTrue("\($0)".contains("bad tensor 'w'"), "\($0)")
        }
        XCTAssertEqual(state.phase, .awaitingHello, "nothing was accepted")
    }

    func testALayoutThatDiffersNamesTheFirstTensorThatDoes() {
        var tensors = layout.tensors.map { EngineTensor(name: $0.name, shape: $0.shape) }
        tensors[4].shape = [8, 9]
        XCTAssertEqual(layout.mismatch(with: tensors),
                       "tensor 4 is h.0.attn.c_attn.weight [24, 8] in the run's model but h.0.attn.c_attn.weight [8, 9] in the engine's")
        XCTAssertTrue(layout.mismatch(with: Array(tensors.prefix(2)))!.contains("ends after 2 tensors"))
        let longer = layout.tensors.map { EngineTensor(name: $0.name, shape: $0.shape) } + [EngineTensor(name: "lm_head.weight", shape: [32, 8])]
        XCTAssertTrue(layout.mismatch(with: longer)!.contains("1 tensors more than the run's model, from lm_head.weight"))
    }

    func testAnAnswerMustBeToTheRoundAskedWithSaneNumbers() throws {
        var state = EngineLinkState()
        _ = try state.hello(hello())
        XCTAssertThrowsError(try state.trained(trained(round: 0, steps: 5))) {
            XCTAssertTrue("\($0)".contains("where the link expects nothing (no round was started)"), "\($0)")
        }
        try state.startRound(3, steps: 5)
        XCTAssertThrowsError(try state.startRound(4, steps: 5), "one round at a time")
        XCTAssertThrowsError(try state.trained(trained(round: 2, steps: 5))) { XCTAssertTrue("\($0)".contains("asked for round 4"), "\($0)") }
        XCTAssertThrowsError(try state.trained(trained(round: 3, steps: 6))) { XCTAssertTrue("\($0)".contains("asked for 1...5"), "\($0)") }
        XCTAssertThrowsError(try state.trained(trained(round: 3, steps: 0)))
        XCTAssertThrowsError(try state.trained(trained(round: 3, steps: 5, loss: .nan))) { XCTAssertTrue("\($0)".contains("diverged"), "\($0)") }
        XCTAssertThrowsError(try state.trained(trained(round: 3, steps: 5, seconds: -1)))
        XCTAssertEqual(try state.trained(trained(round: 3, steps: 2)).steps, 2, "fewer steps than asked is allowed")
    }

    func testAnEnginesErrorIsPassedOnAsItsReason() throws {
        var state = EngineLinkState()
        _ = try state.hello(hello())
        try state.startRound(0, steps: 5)
        XCTAssertThrowsError(try state.trained(.error("CUDA out of memory"))) {
            XCTAssertEqual("\($0)", "the engine stopped: CUDA out of memory")
        }
    }

    func testOnlyDiLoCoWithoutMomentSyncIsOpenToOtherEngines() {
        var strategy = StrategyConfig()
        strategy.name = .diloco
        strategy.round = .steps
        XCTAssertNil(strategy.refusalForOtherEngines)
        strategy.momentSync = 2
        XCTAssertTrue(strategy.refusalForOtherEngines!.contains("momentSync: 0"))
        strategy.momentSync = 0
        strategy.round = .time
        XCTAssertNil(strategy.refusalForOtherEngines, "timed rounds: the engine stops by the budget it is sent")
        strategy.name = .ddp
        XCTAssertTrue(strategy.refusalForOtherEngines!.contains("strategy.name: diloco"))
    }
}
