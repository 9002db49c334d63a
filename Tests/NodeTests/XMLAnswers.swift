import FSConfTestSupport
import Foundation
import FoundationXML
import XCTest

/// Answers read back with FoundationXML, for the tests that look inside them.
protocol XMLAnswers {}

extension XMLAnswers {
    /// The root of a harness run's XML answer (the run must have succeeded).
    func parse(_ output: ProcessOutput, file: StaticString = #filePath, line: UInt = #line) throws -> XMLElement {
        XCTAssertEqual(output.status, 0, output.description, file: file, line: line)
        let doc = try XMLDocument(xmlString: output.stdout, options: [])
        return try XCTUnwrap(doc.rootElement(), output.description, file: file, line: line)
    }

    func values(_ e: XMLNode, _ xpath: String) throws -> [String] {
        try e.nodes(forXPath: xpath).map { $0.stringValue ?? "" }
    }
}
