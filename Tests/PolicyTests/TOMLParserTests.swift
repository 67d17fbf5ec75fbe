import Policy
import Testing

/// The agent's own TOML 1.0 parser against TOMLKit (toml++) on hand-written documents that
/// cover the language, and the errors it must find, each on its line.
struct TOMLParserTests {
    static let valid: [String] = [
        // Keys: bare, quoted, dotted, with spaces around the dots; empty quoted keys.
        #"""
        bare_key = 1
        bare-key = 2
        1234 = 3
        "127.0.0.1" = "value"
        "character encoding" = "value"
        'key2' = "value"
        'quoted "value"' = "value"
        "" = "blank"
        name = "Orange"
        physical.color = "orange"
        physical.shape = "round"
        site."google.com" = true
        fruit . flavor = "banana"
        3.14159 = "pi"
        """#,
        // Strings of every kind, escapes, and the multi-line rules.
        #"""
        basic = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF. \U0001F600 \\ \b\f\r"
        lines = """
        Roses are red
        Violets are blue"""
        folded = """\
               The quick brown \
               fox jumps over \

               the lazy dog.\
               """
        quotes = """Here are two quotation marks: "". Simple enough."""
        five = """Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"."""
        edge = """"This," she said, "is just a pointless statement.""""
        winpath = 'C:\Users\nodejs\templates'
        quoted = 'Tom "Dubs" Preston-Werner'
        regex = '<\i\c*\s*>'
        regex2 = '''I [dw]on't need \d{2} apples'''
        raw = '''
        The first newline is
        trimmed in raw strings.
           All other whitespace
           is preserved.
        '''
        apos = ''''That,' she said, 'is still pointless.''''
        tab = "a	b"
        empty = ""
        emptyml = """"""
        """#,
        // Integers: signs, underscores, hex, octal, binary, the extremes.
        """
        int1 = +99
        int2 = 42
        int3 = 0
        int4 = -17
        int5 = 1_000
        int6 = 5_349_221
        int7 = 53_49_221
        int8 = 1_2_3_4_5
        hex1 = 0xDEADBEEF
        hex2 = 0xdeadbeef
        hex3 = 0xdead_beef
        oct1 = 0o01234567
        oct2 = 0o755
        bin1 = 0b11010110
        max = 9223372036854775807
        min = -9223372036854775808
        zeros = [+0, -0, 0x0, 0o0, 0b0]
        """,
        // Floats: fractions, exponents, underscores, inf and nan.
        """
        flt1 = +1.0
        flt2 = 3.1415
        flt3 = -0.01
        flt4 = 5e+22
        flt5 = 1e06
        flt6 = -2E-2
        flt7 = 6.626e-34
        flt8 = 224_617.445_991_228
        sf1 = inf
        sf2 = +inf
        sf3 = -inf
        sf4 = nan
        sf5 = +nan
        sf6 = -nan
        zero = [0.0, -0.0, +0.0, 0e0]
        """,
        // Dates and times in every form.
        """
        odt1 = 1979-05-27T07:32:00Z
        odt2 = 1979-05-27T00:32:00-07:00
        odt3 = 1979-05-27T00:32:00.999999+07:00
        odt4 = 1979-05-27 07:32:00Z
        odt5 = 1979-05-27t07:32:00z
        ldt1 = 1979-05-27T07:32:00
        ldt2 = 1979-05-27T00:32:00.999999
        ld1 = 1979-05-27
        lt1 = 07:32:00
        lt2 = 00:32:00.999999
        leap = 2024-02-29
        """,
        // Arrays: mixed, nested, over lines, with comments and a trailing comma.
        """
        integers = [ 1, 2, 3 ]
        colors = [ "red", "yellow", "green" ]
        nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]
        nested_mixed_array = [ [ 1, 2 ], ["a", "b", "c"] ]
        string_array = [ "all", 'strings', \"\"\"are the same\"\"\", '''type''' ]
        numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]
        contributors = [
          "Foo Bar <foo@example.com>",
          { name = "Baz Qux", email = "bazqux@example.com", url = "https://example.com/bazqux" }
        ]
        integers2 = [
          1, 2, 3, # a comment
        ]
        integers3 = [
          1,
          2, # this is ok
        ]
        empty = [ ]
        empties = [[], [[]], {}]
        """,
        // Tables, implied super-tables, sub-tables of dotted tables, arrays of tables.
        """
        # top comment
        [table-1]
        key1 = "some string"
        key2 = 123

        [table-2]
        key1 = "another string"
        key2 = 456

        [dog."tater.man"]
        type.name = "pug"

        [ j . "ʞ" . 'l' ]

        [x.y.z.w] # for this to work
        [x] # defining a super-table afterward is ok

        [fruit]
        apple.color = "red"
        apple.taste.sweet = true
        [fruit.apple.texture]  # you can add sub-tables
        smooth = true

        [[products]]
        name = "Hammer"
        sku = 738594937

        [[products]]  # empty table within the array

        [[products]]
        name = "Nail"
        sku = 284758393
        color = "gray"

        [[fruits]]
        name = "apple"

        [fruits.physical]  # subtable
        color = "red"
        shape = "round"

        [[fruits.varieties]]  # nested array of tables
        name = "red delicious"

        [[fruits.varieties]]
        name = "granny smith"

        [[fruits]]
        name = "banana"

        [[fruits.varieties]]
        name = "plantain"
        """,
        // Inline tables, with dotted keys inside, and CRLF line ends.
        "name = { first = \"Tom\", last = \"Preston-Werner\" }\r\npoint = { x = 1, y = 2 }\r\nanimal = { type.name = "
            + "\"pug\" }\r\nempty = {}\r\n",
        // A policy file as admins write them.
        """
        [[policy]]
        name = "mi300x"
        match.ids = ["1002:74a1"]
        driver = "vfio-pci"
        claim-group = true
        owner = "cloud"
        mode = "0660"
        sysfs = ["reset_method="]

        [[policy]]
        name = "flex-vfs"
        [policy.match]
        ids = ["8086:56c0"]
        vf = true
        [policy.sriov]
        num-vfs = 4
        """,
        "",
        "# only a comment",
        "\n\n   \t\n",
        "a = 1 # no newline at the end"
    ]

    @Test(arguments: valid)
    func readsValidDocumentsAsTOMLKitDoes(_ text: String) throws {
        let mine = try TOML.parse(text)
        let oracle = try #require(TOMLOracle.parse(text), "TOMLKit refuses a document meant to be valid")
        #expect(TOMLOracle.same(.table(mine), oracle), "\(mine)\n!=\n\(oracle)")
    }

    @Test func keepsTheDocumentsKeyOrder() throws {
        let table = try TOML.parse("z = 1\na = 2\n[m]\n[b]\n")
        #expect(table.keys == ["z", "a", "m", "b"])
    }

    @Test func valuesAreWhatTheTextSays() throws {
        let table = try TOML.parse(
            """
            s = "tab\\tend \\u00e9"
            i = 0x10
            """)
        #expect(table["s"] == .string("tab\tend é"))
        #expect(table["i"] == .integer(16))
        let dates = try TOML.parse("d = 1979-05-27T00:32:00.5-07:30\nt = 23:59:60.123456789123\n")
        #expect(
            dates["d"]
                == .dateTime(
                    TOML.DateTime(
                        kind: .offsetDateTime, year: 1979, month: 5, day: 27, minute: 32,
                        nanosecond: 500_000_000, offsetMinutes: -450)))
        #expect(
            dates["t"]
                == .dateTime(TOML.DateTime(kind: .localTime, hour: 23, minute: 59, second: 60, nanosecond: 123_456_789))
        )
    }

    /// Text that is not TOML, and the line the error must name.
    static let invalid: [(text: String, line: Int)] = [
        ("key = # INVALID", 1),
        ("first = \"Tom\" last = \"Preston-Werner\" # INVALID", 1),
        ("= \"no key name\"", 1),
        ("a = 1\nname = \"Tom\"\nname = \"Pradyun\"", 3),
        ("spelling = \"favorite\"\n\"spelling\" = \"favourite\"", 2),
        ("fruit.apple = 1\nfruit.apple.smooth = true", 2),
        ("str = \"unterminated\n", 1),
        ("str = \"bad \\x escape\"", 1),
        ("str = \"\\uD800\"", 1),
        ("str = \"\\u12\"", 1),
        ("str = 'line\nbreak'", 1),
        ("str = \"\"\"a\"\"\"\"\"\"", 1),
        ("str = \"a\u{01}b\"", 1),
        ("# comment \u{7F}\n", 1),
        ("a = 1\r", 1),
        ("int = +0x10", 1),
        ("int = 0X10", 1),
        ("int = 012", 1),
        ("int = 1__000", 1),
        ("int = _1", 1),
        ("int = 1_", 1),
        ("int = 9223372036854775808", 1),
        ("int = -9223372036854775809", 1),
        ("int = 0b102", 1),
        ("flt = .7", 1),
        ("flt = 7.", 1),
        ("flt = 3.e+20", 1),
        ("flt = 03.14", 1),
        ("flt = 1e", 1),
        ("flt = infinity", 1),
        ("b = True", 1),
        ("d = 1979-02-29", 1),
        ("d = 1979-13-01", 1),
        ("d = 1979-05-27T24:00:00", 1),
        ("d = 1979-05-27T07:32", 1),
        ("d = 07:32:00Z", 1),
        ("d = 1979-05-27T07:32:00+7:00", 1),
        ("a = [1, 2", 1),
        ("a = [1 2]", 1),
        ("a = [,]", 1),
        ("a = { b = 1, }", 1),
        ("a = { b = 1\n}", 1),
        ("a = { b = 1, b = 2 }", 1),
        ("a = {}\na.b = 1", 2),
        ("a = {}\n[a.b]", 2),
        ("a = [{}]\n[[a]]", 2),
        ("[fruit]\napple = \"red\"\n\n[fruit]\norange = \"orange\"", 4),
        ("[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"", 4),
        ("[fruit]\napple.color = \"red\"\n[fruit.apple]", 3),
        ("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", 4),
        ("[[fruits]]\nname = \"apple\"\n[fruits]", 3),
        ("[fruit.physical]\ncolor = \"red\"\n[[fruit]]", 3),
        ("[a]\nb = 1\n[a.b]", 3),
        ("[ a ] ]", 1),
        ("[a", 1),
        ("[]", 1),
        ("[a.]", 1),
        ("[[a]\n", 1),
        ("[ [a]]", 1),
        ("a = 1\n[\n", 2),
        ("a.\"b\nc\" = 1", 1),
        ("key", 1),
        ("key =", 1),
        ("a = 1 b", 1),
        ("x = [ } ]", 1)
    ]

    @Test(arguments: invalid.indices)
    func refusesTextThatIsNotTOMLNamingItsLine(_ index: Int) {
        let (text, line) = Self.invalid[index]
        #expect(throws: TOML.SyntaxError.self, "\(text.debugDescription) was accepted") { try TOML.parse(text) }
        do {
            _ = try TOML.parse(text)
        } catch {
            #expect(error.line == line, "\(text.debugDescription): \(error)")
        }
    }

    @Test func nestingIsBoundedWhateverMakesIt() {
        let arrays = "a = " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let tables = "[" + (0..<40).map { "k\($0)" }.joined(separator: ".") + "]"
        let dotted = (0..<40).map { "k\($0)" }.joined(separator: ".") + " = 1"
        let inline = "a = " + String(repeating: "{b = ", count: 40) + "1" + String(repeating: "}", count: 40)
        for text in [arrays, tables, dotted, inline] {
            #expect(throws: TOML.SyntaxError.self) { try TOML.parse(text) }
        }
        #expect(
            (try? TOML.parse("a = " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32))) != nil)
        #expect(
            (try? TOML.parse("a = " + String(repeating: "[", count: 33) + String(repeating: "]", count: 33))) == nil)
    }

    @Test func errorsCountColumnsInCharacters() {
        do {
            _ = try TOML.parse("\"ключ\" = \"ok\"\n\"é\" = @")
            Issue.record("accepted")
        } catch {
            #expect(error.line == 2 && error.column == 7, "\(error)")
        }
    }
}
