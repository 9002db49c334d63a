import XCTest
final class FSConfStoreTestsPlaceholder: XCTestCase { func testNothing() {} }
