/// The schema version this build of fsconf reads and writes: the highest
/// migration in `migrations/`. A test keeps the two equal.
public enum SchemaVersion {
    public static let current = 11
}
