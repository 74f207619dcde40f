import CBLAS

/// Which OpenBLAS kernels ("core") this process runs, and whether they suit its CPU.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU model when it loads. A release that
/// predates the CPU (Debian's 0.3.21 on Sapphire Rapids, for one) falls back to its oldest x86-64
/// kernels, "Prescott": SSE3 only, 5× slower sgemm on an AVX-512 machine. The CPU's features say
/// what it can run; `OPENBLAS_CORETYPE=<replacement>` before the library loads gets it.
public struct BLASCoreCheck: Sendable, Equatable {
    /// Kernel families by the widest vectors they use.
    public enum Tier: Int, Comparable, Sendable {
        case generic, avx, avx2, avx512

        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }

        /// How the tier is named in messages.
        public var label: String {
            switch self {
            case .generic: "SSE"
            case .avx: "AVX"
            case .avx2: "AVX2"
            case .avx512: "AVX-512"
            }
        }
    }

    /// The CPU features that decide the tier.
    public struct CPU: Sendable, Equatable {
        public var avx = false, avx2 = false, fma = false
        public var avx512 = false
        public var avx512BF16 = false
        public var amd = false

        public init(avx: Bool = false, avx2: Bool = false, fma: Bool = false, avx512: Bool = false,
                    avx512BF16: Bool = false, amd: Bool = false) {
            self.avx = avx; self.avx2 = avx2; self.fma = fma
            self.avx512 = avx512; self.avx512BF16 = avx512BF16; self.amd = amd
        }

        /// This machine's CPU, from CPUID.
        public static var current: CPU {
            let f = tributary_cpu_features()
            func has(_ bit: Int) -> Bool { f & UInt32(bit) != 0 }
            let avx512Bits = [TRIBUTARY_CPU_AVX512F, TRIBUTARY_CPU_AVX512BW, TRIBUTARY_CPU_AVX512VL,
                              TRIBUTARY_CPU_AVX512DQ, TRIBUTARY_CPU_AVX512CD]
            return CPU(avx: has(TRIBUTARY_CPU_AVX), avx2: has(TRIBUTARY_CPU_AVX2),
                       fma: has(TRIBUTARY_CPU_FMA), avx512: avx512Bits.allSatisfy { has($0) },
                       avx512BF16: has(TRIBUTARY_CPU_AVX512BF16), amd: has(TRIBUTARY_CPU_AMD))
        }

        /// The widest kernels this CPU runs.
        public var tier: Tier {
            if avx512 { return .avx512 }
            if avx2 && fma { return .avx2 }
            return avx ? .avx : .generic
        }
    }

    /// The core OpenBLAS runs, as `openblas_get_corename` names it.
    public let active: String
    /// The CPU it runs on.
    public let cpu: CPU

    public init(active: String, cpu: CPU) {
        self.active = active
        self.cpu = cpu
    }

    /// This process's OpenBLAS core and CPU.
    public static func current() -> BLASCoreCheck {
        BLASCoreCheck(active: String(cString: openblas_get_corename()), cpu: .current)
    }

    /// The tier of an x86-64 OpenBLAS core; nil for one this table does not know (trusted as chosen).
    public static func tier(ofCore name: String) -> Tier? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": .avx512
        case "haswell", "zen", "excavator": .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": .avx
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3",
             "barcelona", "bobcat", "katmai", "coppermine", "northwood", "banias", "athlon", "nano", "generic":
            .generic
        default: nil
        }
    }

    /// Whether OpenBLAS runs narrower kernels than the CPU supports.
    public var isFallback: Bool {
        guard let tier = Self.tier(ofCore: active) else { return false }
        return tier < cpu.tier
    }

    /// The core to request with `OPENBLAS_CORETYPE` when the active one is a fallback.
    public var replacement: String? {
        guard isFallback else { return nil }
        switch cpu.tier {
        case .avx512: return cpu.avx512BF16 ? "Cooperlake" : "SkylakeX"
        case .avx2: return cpu.amd ? "Zen" : "Haswell"
        case .avx: return "Sandybridge"
        case .generic: return nil
        }
    }

    /// One line for people: the core, and a warning when it is a fallback.
    public var summary: String {
        isFallback
            ? "OpenBLAS core \(active), a fallback on this \(cpu.tier.label) CPU (matrix products run several times slower)"
            : "OpenBLAS core \(active) (\(cpu.tier.label) CPU)"
    }
}
