import TensorCore
import XCTest

final class NewtonSchulzTests: XCTestCase {
    /// A scaled partial permutation has all its singular values equal, so the iteration acts on
    /// the one value 1/√rank as the scalar polynomial x ← a·x + b·x³ + c·x⁵ (computed here in
    /// Double) and keeps the permutation's pattern: a known answer for wide, tall and square shapes.
    func testScaledPermutationFollowsTheScalarPolynomial() {
        for (rows, cols) in [(6, 10), (10, 6), (7, 7)] {
            let rank = min(rows, cols)
            var input = [Float](repeating: 0, count: rows * cols)
            // Row i has its one nonzero in column i·k mod cols, with k coprime to cols: a permutation.
            let k = [3, 5, 7].first { gcd($0, cols) == 1 }!
            for i in 0..<rank { input[i * cols + (i * k) % cols] = 5 }
            var x = Double(1) / Double(rank).squareRoot()
            for _ in 0..<5 {
                x = Double(NewtonSchulz.a) * x + Double(NewtonSchulz.b) * pow(x, 3) + Double(NewtonSchulz.c) * pow(x, 5)
            }
            let ns = NewtonSchulz(rows: rows, cols: cols, steps: 5)
            var scratch = [Float](repeating: .nan, count: ns.scratchCount)
            input.withUnsafeMutableBufferPointer { matrix in
                scratch.withUnsafeMutableBufferPointer { ns.orthogonalize(matrix.baseAddress!, scratch: $0.baseAddress!, parallelism: Parallelism(threads: 2)) }
            }
            for r in 0..<rows {
                for c in 0..<cols {
                    let expected = r < rank && c == (r * k) % cols ? x : 0
                    XCTAssertEqual(Double(input[r * cols + c]), expected, accuracy: 1e-5, "\(rows)×\(cols) at (\(r), \(c))")
                }
            }
        }
    }

    func testZeroMatrixStaysZero() {
        let ns = NewtonSchulz(rows: 3, cols: 4)
        var matrix = [Float](repeating: 0, count: 12)
        var scratch = [Float](repeating: 0, count: ns.scratchCount)
        matrix.withUnsafeMutableBufferPointer { m in
            scratch.withUnsafeMutableBufferPointer { ns.orthogonalize(m.baseAddress!, scratch: $0.baseAddress!, parallelism: Parallelism(threads: 1)) }
        }
        XCTAssertEqual(matrix, [Float](repeating: 0, count: 12))
    }

    private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
