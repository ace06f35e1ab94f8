"""TF Serving's JSON: how its REST API reads request bodies and writes answers.

TF Serving parses with rapidjson 1.1.0 (tensorflow_serving/workspace.bzl:54; iterative,
NaN/Inf allowed, stops after the first value: util/json_tensor.cc:483-485; reader.h's
IterativeParse, ParseNumber and ParseStringToStream give the errors and offsets) and writes with rapidjson's PrettyWriter.
What a client can observe of that is reproduced here from those rules, not from its code:

* which documents parse, and the parse error text ("JSON Parse error: <rapidjson's English
  message> at offset: N");
* the number model: an integer literal that fits int64/uint64 stays an integer, anything
  else (fraction, exponent, NaN, Infinity, larger integers) is a double ("IsDouble");
* objects keep every member in order (a repeated key is iterated twice, and a lookup sees
  the first, like rapidjson's FindMember);
* `debug_string`, the 256-byte single-line-array rendering used inside error texts;
* float output ("WriteDecimal", json_tensor.cc:124-170) and the pretty layout.

Python's `json` does the parsing when it can (it is ~20x faster); a body it refuses, or
one where it would differ from rapidjson, is parsed again by the small parser below, which
reports rapidjson's error and offset.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from decimal import Decimal

import numpy as np

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
DEBUG_STRING_LIMIT = 256  # kMaxJsonDebugStringBytes, json_tensor.cc:225


class JsonParseError(ValueError):
    """rapidjson's parse error: `message` is its English text, `offset` the byte offset."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} at offset: {offset}")
        self.message, self.offset = message, offset


class JsonObject(dict):
    """A JSON object: `pairs` keeps every member in document order (rapidjson iterates
    them all); the dict view holds the first value of each key (FindMember)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs
        for k, v in pairs:
            if k not in self:
                dict.__setitem__(self, k, v)


class Double(float):
    """A JSON number rapidjson stores as a double although Python reads an int (an
    integer literal beyond uint64/int64)."""


def is_double(value) -> bool:
    return isinstance(value, float)


def is_int(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


# -- parsing --------------------------------------------------------------------------------------
def _fast_int(text: str):
    value = int(text)
    if INT64_MIN <= value <= UINT64_MAX:
        return value
    as_float = float(value)  # OverflowError: rapidjson's "Number too big", left to the slow parser
    return Double(as_float)


def _fast_float(text: str):
    value = float(text)
    if math.isinf(value):
        raise OverflowError(text)  # rapidjson refuses a literal beyond double's range
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=JsonObject, parse_int=_fast_int, parse_float=_fast_float)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # Python accepts lone surrogates, rapidjson does not
_WS = b" \t\n\r"


def parse(body: bytes):
    """The JSON value of `body` as TF Serving's rapidjson reads it; JsonParseError if none."""
    start = len(body) - len(body.lstrip(_WS))
    if b"\x00" not in body and not _SURROGATE_ESCAPE.search(body):
        try:
            value, _ = _DECODER.raw_decode(body.decode("utf-8"), start)
            return value
        except (ValueError, OverflowError, UnicodeDecodeError, RecursionError):
            pass
    return _Parser(body).parse()


_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_VALUE_START = set(b'[{"tfn')


class _Parser:
    """rapidjson's iterative parser (kParseIterativeFlag | kParseNanAndInfFlag |
    kParseStopWhenDoneFlag): its states decide which error a bad token gets."""

    def __init__(self, data: bytes):
        self.s = data
        self.i = 0

    def peek(self) -> int:
        return self.s[self.i] if self.i < len(self.s) else 0  # a NUL reads as the end, as in rapidjson

    def error(self, message: str, offset: int | None = None):
        raise JsonParseError(message, self.i if offset is None else offset)

    def skip(self):
        while self.i < len(self.s) and self.s[self.i] in _WS:
            self.i += 1

    def parse(self):
        self.skip()
        c = self.peek()
        if c == 0 or c in b"]},:":
            self.error("The document is empty.")
        return self.value()

    def value(self):
        c = self.peek()
        if c == ord("{"):
            return self.obj()
        if c == ord("["):
            return self.arr()
        if c == ord('"'):
            return self.string()
        if c in (ord("t"), ord("f"), ord("n")):
            word = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}[c]
            self.i += 1
            for ch in word[1:]:
                if self.peek() != ch:
                    self.error("Invalid value.")
                self.i += 1
            return {b"true": True, b"false": False, b"null": None}[word]
        return self.number()

    def value_after(self, expected_here: str):
        """A value where one is required: a structural token or the end is `expected_here`."""
        self.skip()
        c = self.peek()
        if c == 0 or c in b"]},:":
            self.error(expected_here)
        return self.value()

    def obj(self):
        self.i += 1
        pairs = []
        self.skip()
        if self.peek() == ord("}"):
            self.i += 1
            return JsonObject(pairs)
        while True:
            self.skip()
            if self.peek() != ord('"'):
                self.error("Missing a name for object member.")
            key = self.string()
            self.skip()
            if self.peek() != ord(":"):
                self.error("Missing a colon after a name of object member.")
            self.i += 1
            pairs.append((key, self.value_after("Invalid value.")))
            self.skip()
            c = self.peek()
            if c == ord(","):
                self.i += 1
                continue
            if c == ord("}"):
                self.i += 1
                return JsonObject(pairs)
            self.error("Missing a comma or '}' after an object member.")

    def arr(self):
        self.i += 1
        items = []
        self.skip()
        if self.peek() == ord("]"):
            self.i += 1
            return items
        while True:
            items.append(self.value_after("Invalid value."))
            self.skip()
            c = self.peek()
            if c == ord(","):
                self.i += 1
                continue
            if c == ord("]"):
                self.i += 1
                return items
            self.error("Missing a comma or ']' after an array element.")

    def hex4(self, escape_at: int) -> int:
        digits = self.s[self.i : self.i + 4]
        if len(digits) < 4 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
            self.error("Incorrect hex digit after \\u escape in string.", escape_at)
        self.i += 4
        return int(digits, 16)

    def string(self) -> str:
        self.i += 1
        out = bytearray()
        while True:
            c = self.peek()
            if c == ord('"'):
                self.i += 1
                return out.decode("utf-8", "surrogateescape")
            if c == ord("\\"):
                at = self.i
                self.i += 1
                e = self.peek()
                if e in _ESCAPES:
                    out += _ESCAPES[e].encode()
                    self.i += 1
                elif e == ord("u"):
                    self.i += 1
                    code = self.hex4(at)
                    if 0xD800 <= code <= 0xDBFF:
                        if self.s[self.i : self.i + 2] != b"\\u":
                            self.error("The surrogate pair in string is invalid.", at)
                        self.i += 2
                        low = self.hex4(at)
                        if not 0xDC00 <= low <= 0xDFFF:
                            self.error("The surrogate pair in string is invalid.", at)
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    elif 0xDC00 <= code <= 0xDFFF:
                        self.error("The surrogate pair in string is invalid.", at)
                    out += chr(code).encode()
                else:
                    self.error("Invalid escape character in string.", at)
            elif c == 0:
                self.error("Missing a closing quotation mark in string.")
            elif c < 0x20:  # rapidjson 1.1.0 (TF Serving's, workspace.bzl:54) calls this an escape error
                self.error("Invalid escape character in string.")
            else:
                out.append(c)
                self.i += 1

    def number(self):
        start = self.i
        if self.peek() == ord("-"):
            self.i += 1
        c = self.peek()
        if c in (ord("N"), ord("I")):  # kParseNanAndInfFlag: NaN, Inf, Infinity
            word = b"NaN" if c == ord("N") else b"Inf"
            for ch in word:
                if self.peek() != ch:
                    self.error("Invalid value.")
                self.i += 1
            if word == b"Inf" and self.peek() == ord("i"):
                for ch in b"inity":
                    if self.peek() != ch:
                        self.error("Invalid value.")
                    self.i += 1
            value = math.nan if word == b"NaN" else math.inf
            return -value if self.s[start] == ord("-") else value
        if not (ord("0") <= c <= ord("9")):
            self.error("Invalid value.")
        if c == ord("0"):
            self.i += 1
        else:
            while ord("0") <= self.peek() <= ord("9"):
                self.i += 1
        integral = True
        if self.peek() == ord("."):
            integral = False
            self.i += 1
            if not ord("0") <= self.peek() <= ord("9"):
                self.error("Miss fraction part in number.")
            while ord("0") <= self.peek() <= ord("9"):
                self.i += 1
        if self.peek() in (ord("e"), ord("E")):
            integral = False
            self.i += 1
            if self.peek() in (ord("+"), ord("-")):
                self.i += 1
            if not ord("0") <= self.peek() <= ord("9"):
                self.error("Miss exponent in number.")
            while ord("0") <= self.peek() <= ord("9"):
                self.i += 1
        text = self.s[start : self.i].decode()
        if integral:
            value = int(text)
            if INT64_MIN <= value <= UINT64_MAX:
                return value
            text = str(value)
        try:
            value = float(text)
        except OverflowError:
            value = math.inf
        if math.isinf(value):
            self.error("Number too big to be stored in double.", start)
        return Double(value) if integral else value


# -- writing --------------------------------------------------------------------------------------
def json_string(value) -> bytes:
    """rapidjson's Writer::String: quotes, backslash and control characters escaped,
    everything else (non-ASCII, even invalid UTF-8) written as the bytes it is."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    out = bytearray(b'"')
    for b in raw:
        if b == 0x22:
            out += b'\\"'
        elif b == 0x5C:
            out += b"\\\\"
        elif b < 0x20:
            out += {0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}.get(b, b"\\u00%02X" % b)
        else:
            out.append(b)
    out += b'"'
    return bytes(out)


def rapidjson_double(value: float) -> str | None:
    """rapidjson's Writer::Double (shortest digits, its own layout); None for NaN/Inf,
    which that writer refuses."""
    if math.isnan(value) or math.isinf(value):
        return None
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    _, all_digits, exponent = Decimal(repr(abs(value))).as_tuple()
    all_digits = "".join(map(str, all_digits))
    digits = all_digits.rstrip("0") or "0"
    k = exponent + len(all_digits) - len(digits)  # value = digits x 10^k
    length, kk = len(digits), len(digits) + k
    prefix = "-" if value < 0 else ""
    if 0 <= k and kk <= 21:
        return prefix + digits + "0" * k + ".0"
    if 0 < kk <= 21:
        return prefix + digits[:kk] + "." + digits[kk:]
    if -6 < kk <= 0:
        return prefix + "0." + "0" * -kk + digits
    if length == 1:
        return f"{prefix}{digits}e{kk - 1}"
    return f"{prefix}{digits[0]}.{digits[1:]}e{kk - 1}"


def write_decimal(value, double: bool = False) -> str:
    """WriteDecimal (json_tensor.cc:124-170): six significant digits when they round-trip,
    else max_digits10; whole numbers get ".0"; NaN and +-Infinity as such."""
    value = float(value) if double else float(np.float32(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = "%.6g" % value
    back = float(text) if double else float(np.float32(float(text)))
    if back != value:
        text = "%.*g" % (17 if double else 9, value)
    if "." not in text and "e" not in text:
        text += ".0"
    return text


class Raw:
    """A number already formatted (WriteDecimal's RawValue)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Limit(Exception):
    pass


class PrettyWriter:
    """rapidjson's PrettyWriter (4-space indent). `single_line` is its writer-wide
    kFormatSingleLineArray flag, which TF Serving switches on and off while writing
    (so a row of "predictions" follows the previous one on the same line)."""

    def __init__(self, limit: int | None = None):
        self.out = bytearray()
        self.limit = limit
        self.single_line = False
        self.stack: list[list] = []  # [in_array, value_count]

    def _check(self):
        if self.limit is not None and len(self.out) >= self.limit:
            raise _Limit()

    def _prefix(self):
        if not self.stack:
            return
        level = self.stack[-1]
        in_array, count = level
        if in_array:
            if count > 0:
                self.out += b", " if self.single_line else b","
            if not self.single_line:
                self.out += b"\n" + b" " * (4 * len(self.stack))
        else:
            if count > 0:
                self.out += b",\n" if count % 2 == 0 else b": "
            else:
                self.out += b"\n"
            if count % 2 == 0:
                self.out += b" " * (4 * len(self.stack))
        level[1] += 1

    def scalar(self, token: bytes):
        self._check()
        self._prefix()
        self.out += token

    def key(self, name):
        self.scalar(json_string(name))

    def start(self, array: bool):
        self._check()
        self._prefix()
        self.out += b"[" if array else b"{"
        self.stack.append([array, 0])

    def end(self):
        self._check()
        array, count = self.stack.pop()
        if count and not (array and self.single_line):
            self.out += b"\n" + b" " * (4 * len(self.stack))
        self.out += b"]" if array else b"}"

    def write(self, value):
        """Write a JSON value (JsonObject, dict, list, str/bytes, int, float, bool, None, Raw)."""
        if isinstance(value, dict):
            self.start(False)
            for k, v in value.pairs if isinstance(value, JsonObject) else value.items():
                self.key(k)
                self.write(v)
            self.end()
        elif isinstance(value, list):
            self.start(True)
            for v in value:
                self.write(v)
            self.end()
        elif isinstance(value, (str, bytes)):
            self.scalar(json_string(value))
        elif value is None:
            self.scalar(b"null")
        elif isinstance(value, bool):
            self.scalar(b"true" if value else b"false")
        elif isinstance(value, Raw):
            self.scalar(value.text.encode())
        elif isinstance(value, float):
            text = rapidjson_double(value)
            if text is None:
                raise _Limit()  # the writer refuses NaN/Inf: output stops there
            self.scalar(text.encode())
        else:
            self.scalar(str(int(value)).encode())


def debug_string(value) -> str:
    """JsonValueToDebugString (json_tensor.cc:227-236): pretty, arrays on one line,
    cut once 256 bytes are written (possibly mid-document, as there)."""
    writer = PrettyWriter(limit=DEBUG_STRING_LIMIT)
    writer.single_line = True
    try:
        writer.write(value)
    except _Limit:
        pass
    return writer.out.decode("utf-8", "replace")


def type_string(value) -> str:
    """JsonTypeString (json_tensor.cc:95-112)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def dumps(value) -> bytes:
    writer = PrettyWriter()
    writer.write(value)
    return bytes(writer.out)


def error_body(message: str) -> bytes:
    """MakeJsonFromStatus (json_tensor.cc:1129-1139)."""
    return dumps({"error": message})


# -- base64 ---------------------------------------------------------------------------------------
_B64 = re.compile(r"^[A-Za-z0-9+/]*$")


def b64decode(text: str) -> bytes | None:
    """absl::Base64Unescape: the standard alphabet, padding optional but correct when
    present; None when the text is not base64."""
    stripped = text.rstrip("=")
    padding = len(text) - len(stripped)
    if not _B64.match(stripped) or len(stripped) % 4 == 1 or padding > 2:
        return None
    if padding and (len(stripped) + padding) % 4:
        return None
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()
