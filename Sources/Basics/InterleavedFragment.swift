/// How many of `count` elements belong to interleaved fragment `fragment` of `fragments` (the
/// elements `fragment`, `fragment + fragments`, …): what streaming DiLoCo sends in one round.
public func interleavedFragmentSize(count: Int, fragment: Int, of fragments: Int) -> Int {
    precondition(fragments >= 1 && (0..<fragments).contains(fragment), "[interleavedFragmentSize] fragment \(fragment) of \(fragments)")
    return max(0, (count - fragment + fragments - 1) / fragments)
}
