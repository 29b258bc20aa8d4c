import unittest

from chserver import errors
from chserver.errors import ClickHouseError
from tests import support


class FromEngineTest(unittest.TestCase):
    def test_plain_message(self):
        error = errors.from_engine(RuntimeError("Code: 60. DB::Exception: Table default.x does not exist. (UNKNOWN_TABLE)"))
        self.assertEqual((error.code, error.name), (60, "UNKNOWN_TABLE"))
        self.assertEqual(error.message, "Table default.x does not exist")
        self.assertEqual(error.status, 404)
        self.assertTrue(error.text().startswith("Code: 60. DB::Exception: Table default.x does not exist. (UNKNOWN_TABLE) (version "))

    def test_nested_and_wrapped_messages_are_flattened(self):
        raw = (
            "Streaming query failed: Code: 73. DB::Exception: Code: 73. DB::Exception: Unknown format X. "
            "(UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT)"
        )
        error = errors.from_engine(RuntimeError(raw))
        self.assertEqual((error.code, error.message, error.name), (73, "Unknown format X", "UNKNOWN_FORMAT"))

    def test_trailing_period_is_kept_like_clickhouse(self):
        error = ClickHouseError.of("AUTHENTICATION_FAILED", "default: Authentication failed: bad.")
        self.assertIn("bad.. (AUTHENTICATION_FAILED)", error.text())
        self.assertEqual(error.status, 403)

    def test_text_without_a_code(self):
        error = errors.from_engine(RuntimeError("something odd"))
        self.assertEqual(error.code, errors.CODES["UNKNOWN_EXCEPTION"])
        self.assertEqual(error.status, 500)

    def test_statuses(self):
        for name, status in [("SYNTAX_ERROR", 400), ("UNKNOWN_DATABASE", 404), ("UNKNOWN_SETTING", 404),
                             ("TIMEOUT_EXCEEDED", 408), ("QUERY_IS_TOO_LARGE", 413), ("NOT_IMPLEMENTED", 501),
                             ("CHECKSUM_DOESNT_MATCH", 500), ("READONLY", 500)]:
            self.assertEqual(ClickHouseError.of(name, "x").status, status, name)


class EngineCodesTest(unittest.TestCase):
    def test_static_codes_match_the_engine(self):
        from chserver.errors import CODES

        static = dict(CODES)
        engine = support.server().engine  # loads the engine's names over the static ones
        self.assertTrue(engine.version.startswith("26.9"))
        for name, code in static.items():
            self.assertEqual(errors.CODES[name], code, name)


if __name__ == "__main__":
    unittest.main()
