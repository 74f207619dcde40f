import Strategies
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
}
