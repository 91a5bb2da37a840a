/// Comparisons of secrets (webhook signatures and tokens) that take the same time whatever they hold.
public enum ConstantTime {
    /// Compares every byte whatever the first difference, so timing does not tell how much of a guess was right.
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        var left = a.makeIterator()
        var right = b.makeIterator()
        for _ in 0..<max(a.count, b.count) {
            difference |= (left.next() ?? 0) ^ (right.next() ?? 0)
        }
        return difference == 0 && !b.isEmpty
    }
}
