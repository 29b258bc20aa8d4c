import unittest

from chserver import sql


class SplitInsertTest(unittest.TestCase):
    def split(self, text, complete=True):
        return sql.split_insert(text, complete)

    def test_url_query_followed_by_newline_and_body(self):
        buf = b"INSERT INTO t(a,b) FORMAT RowBinary\n" + b"\x00\x01'\"--"
        found = self.split(buf)
        self.assertEqual(found.statement, b"INSERT INTO t(a,b)")
        self.assertEqual(found.format, "RowBinary")
        self.assertEqual(buf[found.data_start :], b"\x00\x01'\"--")

    def test_data_starts_after_first_newline_or_after_spaces(self):
        buf = b"INSERT INTO t FORMAT CSV  \r\n 1,2"
        self.assertEqual(buf[self.split(buf).data_start :], b" 1,2")
        buf = b"INSERT INTO t FORMAT CSV   1,2"
        self.assertEqual(buf[self.split(buf).data_start :], b"1,2")
        buf = b"INSERT INTO t FORMAT CSV\n\n1,2"
        self.assertEqual(buf[self.split(buf).data_start :], b"\n1,2")

    def test_values(self):
        buf = b"insert into db.t (a) values (1), (2)"
        found = self.split(buf)
        self.assertEqual((found.statement, found.format), (b"insert into db.t (a)", "Values"))
        self.assertEqual(buf[found.data_start :], b" (1), (2)")

    def test_settings_and_quoted_names_stay_in_the_statement(self):
        buf = b"INSERT INTO `my table` SETTINGS async_insert=1, x='FORMAT' FORMAT \"JSONEachRow\"\n{}"
        found = self.split(buf)
        self.assertEqual(found.statement, b"INSERT INTO `my table` SETTINGS async_insert=1, x='FORMAT'")
        self.assertEqual(found.format, "JSONEachRow")

    def test_comments_hide_keywords(self):
        buf = b"INSERT /* FORMAT Nope */ INTO t -- VALUES\n FORMAT TSV\n1"
        self.assertEqual(self.split(buf).format, "TSV")

    def test_table_called_format(self):
        buf = b"INSERT INTO format FORMAT CSV\n1"
        found = self.split(buf)
        self.assertEqual((found.statement, found.format), (b"INSERT INTO format", "CSV"))

    def test_table_function_arguments_are_skipped(self):
        buf = b"INSERT INTO FUNCTION file('x.csv', 'CSV', 'a UInt8') FORMAT CSV\n1"
        self.assertEqual(self.split(buf).format, "CSV")

    def test_inserts_without_inline_data(self):
        for buf in (
            b"INSERT INTO t SELECT 1",
            b"INSERT INTO t (a) WITH 1 AS x SELECT x",
            b"INSERT INTO t FROM INFILE 'f' FORMAT CSV",
            b"SELECT 1 FORMAT CSV",
            b"CREATE TABLE t (a UInt8) ENGINE = Memory",
            b"",
        ):
            self.assertIsNone(self.split(buf), buf)

    def test_incomplete_prefixes_ask_for_more(self):
        for buf in (b"", b"INS", b"INSERT INTO t", b"INSERT INTO t FORMAT Row", b"INSERT INTO t /* open", b"INSERT INTO 't"):
            with self.assertRaises(sql.NeedMore, msg=buf):
                self.split(buf, complete=False)
        self.assertIsNone(self.split(b"SELECT", complete=False))
        found = self.split(b"INSERT INTO t FORMAT RowBinary\n\x00", complete=False)
        self.assertEqual(found.data_start, 31)


class StatementTest(unittest.TestCase):
    def test_multi_statement(self):
        self.assertIsNone(sql.statement_tail_after_semicolon(b"SELECT 1;"))
        self.assertIsNone(sql.statement_tail_after_semicolon(b"SELECT ';' ; -- done\n"))
        self.assertEqual(sql.statement_tail_after_semicolon(b"SELECT 1; SELECT 2"), 10)

    def test_output_format(self):
        self.assertEqual(sql.output_format(b"SELECT 1 FORMAT JSON"), "JSON")
        self.assertEqual(sql.output_format(b"SELECT 1 FORMAT JSON SETTINGS max_threads = 1;"), "JSON")
        self.assertIsNone(sql.output_format(b"SELECT format FROM t"))
        self.assertIsNone(sql.output_format(b"SELECT (SELECT 1 FORMAT JSON)"))
        self.assertTrue(sql.mentions_format(b"SELECT format FROM t"))
        self.assertFalse(sql.mentions_format(b"SELECT formatRow('CSV', 1)"))

    def test_first_keyword(self):
        self.assertEqual(sql.first_keyword(b"  -- c\n with 1 as x select x"), "WITH")
        self.assertEqual(sql.first_keyword(b"(SELECT 1)"), "")

    def test_heredoc_strings(self):
        self.assertIsNone(sql.statement_tail_after_semicolon(b"SELECT $x$ ; SELECT $x$"))
        self.assertEqual(sql.statement_tail_after_semicolon(b"SELECT $$a$$; SELECT 2"), 14)


if __name__ == "__main__":
    unittest.main()
