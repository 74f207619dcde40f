import Foundation
import Strategies
import Training
import XCTest

final class OuterOptimizerTests: XCTestCase {
    /// Two Nesterov steps against values worked out by hand (PyTorch's SGD(nesterov=True) form).
    func testNesterovMatchesHandComputedSteps() {
        var sgd = NesterovSGD(count: 2, learningRate: 0.5, momentum: 0.9)
        var theta: [Float] = [1, -2]
        theta.withUnsafeMutableBufferPointer { p in
            [0.2, 0.4].withUnsafeBufferPointer { sgd.step(parameters: p, gradient: $0) }
        }
        // m = g = (0.2, 0.4); update = g + 0.9 m = (0.38, 0.76); θ = θ - 0.5 update.
        XCTAssertEqual(theta[0], 1 - 0.19, accuracy: 1e-6)
        XCTAssertEqual(theta[1], -2 - 0.38, accuracy: 1e-6)
        theta.withUnsafeMutableBufferPointer { p in
            [-0.1, 0.0].withUnsafeBufferPointer { sgd.step(parameters: p, gradient: $0) }
        }
        // m = 0.9 (0.2, 0.4) + (-0.1, 0) = (0.08, 0.36); update = g + 0.9 m = (-0.028, 0.324).
        XCTAssertEqual(sgd.velocity[0], 0.08, accuracy: 1e-6)
        XCTAssertEqual(sgd.velocity[1], 0.36, accuracy: 1e-6)
        XCTAssertEqual(theta[0], 0.81 + 0.014, accuracy: 1e-6)
        XCTAssertEqual(theta[1], -2.38 - 0.162, accuracy: 1e-6)
    }

    /// With one worker, lr 1 and no momentum, DiLoCo's outer step lands exactly on the local
    /// parameters (global − (global − local)).
    func testPlainOuterStepOfOneWorkerIsTheLocalModel() {
        var sgd = NesterovSGD(count: 3, learningRate: 1, momentum: 0)
        let local: [Float] = [0.5, -1.25, 3]
        var global: [Float] = [1, 1, 1]
        let pseudo = zip(global, local).map { $0 - $1 }
        global.withUnsafeMutableBufferPointer { p in pseudo.withUnsafeBufferPointer { sgd.step(parameters: p, gradient: $0) } }
        XCTAssertEqual(global, local)
    }

    /// The rule's momentum horizon is a fifteenth of the rounds, from none to DiLoCo's 0.9; the step
    /// lr/(1−μ) is 1 (plain averaging; one worker: plain training) for the shortest runs and grows to
    /// DiLoCo's 0.7/0.9 for long ones; a config's own values win.
    func testOuterSettingsFollowTheRunShape() {
        var strategy = StrategyConfig()
        strategy.name = .diloco
        let short = OuterSettings(strategy: strategy, workers: 1, rounds: 10)
        XCTAssertEqual(short.momentum, 0)
        XCTAssertEqual(short.learningRate, 1, accuracy: 1e-6)
        let twenty = OuterSettings(strategy: strategy, workers: 1, rounds: 24)
        XCTAssertEqual(twenty.momentum, 0.375, accuracy: 1e-6)
        XCTAssertEqual(twenty.learningRate, 0.7 * 1.6 * 0.625, accuracy: 1e-6)
        let thirty = OuterSettings(strategy: strategy, workers: 1, rounds: 30)
        XCTAssertEqual(thirty.momentum, 0.5, accuracy: 1e-6)
        XCTAssertEqual(thirty.learningRate, 0.7, accuracy: 1e-6)
        let long = OuterSettings(strategy: strategy, workers: 4, rounds: 3000)
        XCTAssertEqual(long.momentum, 0.9, accuracy: 1e-6)
        XCTAssertEqual(long.learningRate, 0.7, accuracy: 1e-6)
        let sixty = OuterSettings(strategy: strategy, workers: 1, rounds: 60)
        XCTAssertEqual(sixty.momentum, 0.75, accuracy: 1e-6)
        XCTAssertEqual(sixty.learningRate, 0.7, accuracy: 1e-6)
        let four = OuterSettings(strategy: strategy, workers: 4, rounds: 30)
        XCTAssertEqual(Double(four.learningRate), Double(thirty.learningRate) * pow(4, OuterSettings.workerExponent), accuracy: 1e-6)
        XCTAssertEqual(four.momentum, thirty.momentum)
        strategy.outerLearningRate = 0.7
        strategy.outerMomentum = 0.9
        XCTAssertEqual(OuterSettings(strategy: strategy, workers: 8, rounds: 5), OuterSettings(learningRate: 0.7, momentum: 0.9))
    }
}
