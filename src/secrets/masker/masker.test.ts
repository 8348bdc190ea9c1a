import { describe, expect, it } from "vitest";
import { AirlockError } from "../../errors.js";
import { createMasker, type Detection, MASK, maskText, SecretSet } from "./index.js";
import { base64Stable, deriveNeedles } from "./needles.js";
import { feed, oneByOne, referenceMask } from "./test-support.js";

const SECRET = "s3cr3t-V@lue/with+odd chars&=é";

function masker(values: string[], opts: Parameters<typeof createMasker>[1] = {}) {
  const set = new SecretSet(values.map((v, i) => [`S${i}`, v] as const));
  return { set, filter: createMasker(set, opts) };
}

describe("encodings", () => {
  const bytes = Buffer.from(SECRET, "utf8");
  const cases: [string, string][] = [
    ["raw", SECRET],
    ["url (encodeURIComponent)", encodeURIComponent(SECRET)],
    ["url (form, + for space)", encodeURIComponent(SECRET).replace(/%20/g, "+")],
    ["url (lower-case escapes)", encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
    ["json string", JSON.stringify(SECRET).slice(1, -1)],
    ["json (ASCII-only)", JSON.stringify(SECRET).slice(1, -1).replace("é", "\\u00e9")],
    ["hex lower", bytes.toString("hex")],
    ["hex upper", bytes.toString("hex").toUpperCase()],
  ];
  for (const [name, encoded] of cases) {
    it(`masks the ${name} form`, () => {
      const out = feed(masker([SECRET]).filter, [`value: ${encoded} end`]);
      expect(out).toBe(`value: ${MASK} end`);
    });
  }

  it("masks the RFC 3986 strict URL form (Python's quote, Go's QueryEscape escape !'()* too)", () => {
    const value = "it's (a) s3cr3t!*";
    for (const encoded of ["it%27s%20%28a%29%20s3cr3t%21%2A", "it%27s+%28a%29+s3cr3t%21%2A"]) {
      expect(feed(masker([value]).filter, [`value: ${encoded} end`])).toBe(`value: ${MASK} end`);
    }
  });

  for (const alignment of [0, 1, 2]) {
    for (const url of [false, true]) {
      it(`masks base64${url ? "url" : ""} at alignment ${alignment}, with neighbours on both sides`, () => {
        for (const suffix of ["", "x", "yz", "tail"]) {
          const whole = Buffer.concat([Buffer.from("p".repeat(alignment)), bytes, Buffer.from(suffix)]);
          const encoded = whole.toString(url ? "base64url" : "base64");
          const out = feed(masker([SECRET]).filter, [`b64=${encoded}\n`]);
          // What stays visible is the encoding's own head and tail, and of those only the
          // characters that mix in a neighbouring byte: at most up to the stable part's edges.
          const at = out.indexOf(MASK);
          expect(at).toBeGreaterThanOrEqual(4);
          const head = out.slice(4, at);
          const tail = out.slice(at + MASK.length, -1);
          expect(encoded.startsWith(head)).toBe(true);
          expect(encoded.endsWith(tail)).toBe(true);
          expect(head.length).toBeLessThanOrEqual(Math.ceil((8 * alignment) / 6));
          expect(encoded.length - tail.length).toBeGreaterThanOrEqual(
            Math.floor((8 * (alignment + bytes.length)) / 6),
          );
        }
      });
    }
  }

  it("base64Stable is exactly the part that does not depend on the neighbours", () => {
    const v = Buffer.from("abcdefg");
    for (const offset of [0, 1, 2] as const) {
      const stable = base64Stable(v, offset);
      for (const pre of ["\x00\x00", "\xff\xff", "zq"]) {
        const whole = Buffer.concat([
          Buffer.from(pre.slice(0, offset), "latin1"),
          v,
          Buffer.from("\xff", "latin1"),
        ]);
        expect(whole.toString("base64")).toContain(stable);
      }
    }
  });

  it("derives each variant once and never a needle shorter than the minimum", () => {
    const needles = deriveNeedles("abcdef");
    const texts = needles.map((n) => n.text);
    expect(new Set(texts).size).toBe(texts.length);
    expect(texts.every((t) => t.length >= 6)).toBe(true);
    expect(new Set(needles.map((n) => n.variant))).toEqual(new Set(["raw", "base64", "hex"]));
  });
});

describe("chunk boundaries", () => {
  it("masks every needle split at every position, and written one character at a time", () => {
    const { set } = masker([SECRET, "multi\nline\nsecret"]);
    for (const needle of set.needleTexts()) {
      const text = `<${needle}>`;
      const expected = referenceMask(set.needleTexts(), text);
      expect(expected).toBe(`<${MASK}>`);
      expect(feed(createMasker(set), oneByOne(text))).toBe(expected);
      for (let p = 0; p <= text.length; p++) {
        expect(feed(createMasker(set), [text.slice(0, p), text.slice(p)])).toBe(expected);
      }
    }
  });

  it("holds back only a possible partial match, and flush releases it", () => {
    const { filter } = masker(["hunter22secret"]);
    expect(filter.push("log line one\nand hunter2")).toBe("log line one\nand ");
    expect(filter.push("2sec")).toBe("");
    expect(filter.flush()).toBe("hunter22sec");
  });

  it("releases a held partial match as soon as it cannot complete", () => {
    const { filter } = masker(["hunter22secret"]);
    expect(filter.push("x hunter22se")).toBe("x ");
    expect(filter.push("cretary and more\n")).toBe(`x ${MASK}ary and more\n`.slice(2));
    expect(filter.flush()).toBe("");
  });
});

describe("multi-line secrets", () => {
  const KEY = "ab\ncd\nefghijkl";

  it.each([
    ["LF", "ab\ncd\nefghijkl"],
    ["CRLF", "ab\r\ncd\r\nefghijkl"],
    ["spaces (word splitting)", "ab cd efghijkl"],
    ["indentation", "ab\n    cd\n\tefghijkl"],
    ["set -x continuation prefix", "ab\n+ cd\n+ efghijkl"],
    ["nested set -x prefix", "ab\n++ cd\n++ efghijkl"],
  ])("masks the whole value when its newlines became %s", (_, form) => {
    expect(feed(masker([KEY]).filter, oneByOne(`[${form}]`))).toBe(`[${MASK}]`);
  });

  it("masks the set -x trace of echo with a quoted multi-line value", () => {
    const trace = "+ echo 'ab\ncd\nefghijkl'\nab\ncd\nefghijkl\n";
    expect(feed(masker([KEY]).filter, [trace])).toBe(`+ echo '${MASK}'\n${MASK}\n`);
  });

  it("masks long lines on their own, wherever they appear", () => {
    const pem = "line-number-one\nline-number-two\nend";
    expect(feed(masker([pem]).filter, ["x line-number-two y\n"])).toBe(`x ${MASK} y\n`);
  });

  it("masks the JSON-escaped form of a multi-line value", () => {
    const json = JSON.stringify({ key: KEY });
    expect(feed(masker([KEY]).filter, [json])).toBe(`{"key":"${MASK}"}`);
  });

  it("a trailing newline in the value does not prevent masking it without one", () => {
    expect(feed(masker(["file-secret-value\n"]).filter, ["[file-secret-value]"])).toBe(`[${MASK}]`);
    const b64 = Buffer.from("file-secret-value\n").toString("base64");
    expect(feed(masker(["file-secret-value\n"]).filter, [b64])).not.toContain(b64.slice(0, 20));
  });
});

describe("secret set", () => {
  it("refuses short values with an error naming the secret, never the value", () => {
    const set = new SecretSet();
    let err: unknown;
    try {
      set.addSecret("DEPLOY_PIN", "  4821 \n");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AirlockError);
    const e = err as AirlockError;
    expect(e.code).toBe("REQUEST_INVALID");
    expect(e.message).toContain("DEPLOY_PIN");
    expect(e.message).toContain("minimum is 6");
    const everything = JSON.stringify({ m: e.message, h: e.hint, d: e.details, s: e.stack });
    expect(everything).not.toContain("4821");
    expect(set.size).toBe(0);
  });

  it("accepts six characters, ignores duplicates and bumps the version only on change", () => {
    const set = new SecretSet();
    set.addSecret("A", "abcdef");
    const v = set.version;
    set.addSecret("B", "abcdef");
    expect(set.version).toBe(v);
    expect(set.names()).toEqual(["A"]);
  });

  it("maps every needle back to the name of the secret it came from", () => {
    const set = new SecretSet([
      ["A", "alpha-secret-1"],
      ["B", "beta-secret-22"],
    ]);
    for (const n of deriveNeedles("alpha-secret-1")) expect(set.nameOfNeedle(n.text)).toBe("A");
    for (const n of deriveNeedles("beta-secret-22")) expect(set.nameOfNeedle(n.text)).toBe("B");
    expect(set.nameOfNeedle("not-a-needle")).toBeUndefined();
  });

  it("shares one automaton across streams and rebuilds once per version", () => {
    const set = new SecretSet([["A", "abcdefgh"]]);
    const a = set.automaton();
    expect(set.automaton()).toBe(a);
    set.addSecret("B", "zyxwvuts");
    expect(set.automaton()).not.toBe(a);
  });

  it("a value added while text is held back is masked in that text too", () => {
    const set = new SecretSet([["A", "prefix-secret-long"]]);
    const f = createMasker(set);
    expect(f.push("see prefix-sec")).toBe("see ");
    set.addSecret("B", "prefix-second");
    expect(f.push("ond!\n")).toBe(`${MASK}!\n`);
    expect(f.flush()).toBe("");
  });
});

describe("credential formats", () => {
  function run(chunks: string[]) {
    const found: Detection[] = [];
    const { filter } = masker(["registered-value"], { onDetection: (d) => found.push(d) });
    return { out: feed(filter, chunks), found };
  }
  const jwt =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXBvOmFjbWUvd2ViIiwiYXVkIjoiYWlybG9jayJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
  const cases: [string, string, Detection["kind"]][] = [
    ["AWS access key id", "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"],
    ["AWS temporary key id", "ASIAY34FZKBOKMUTVV7A", "aws-access-key-id"],
    ["GitHub classic token", `ghp_${"a1B2c3D4e5".repeat(4)}`, "github-token"],
    ["GitHub app token", `ghs_${"Z9y8X7w6V5".repeat(4)}`, "github-token"],
    ["GitHub fine-grained token", `github_pat_11ABCDEFG0123456789_${"x".repeat(59)}`, "github-token"],
    ["JWT", jwt, "jwt"],
    ["Slack token", "xoxb-1234567890-abcdefghijkl", "slack-token"],
  ];
  for (const [name, value, kind] of cases) {
    it(`masks and reports an unregistered ${name}`, () => {
      const { out, found } = run(oneByOne(`token: ${value} done\n`));
      expect(out).toBe(`token: ${MASK} done\n`);
      expect(found).toEqual([{ kind }]);
    });
  }

  it("masks an AWS secret access key after its name", () => {
    const { out, found } = run(["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"]);
    expect(out).toBe(`aws_secret_access_key = ${MASK}\n`);
    expect(found).toEqual([{ kind: "aws-secret-access-key" }]);
  });

  it("does not match inside longer words", () => {
    const text = "xAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLEs xghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    const { out, found } = run([text]);
    expect(out).toBe(text);
    expect(found).toEqual([]);
  });

  const pem = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "Proc-Type: 4,ENCRYPTED",
    "",
    "MIIEowIBAAKCAQEAz7h6v1yF7i6Zk9rXkq0r5j2m8Lr4QfLw6Y0n8cV3zJ3u0D4u",
    "q1Y8o2B9vV0T0pY5mXz1xH7wq9cQ==",
    "-----END RSA PRIVATE KEY-----",
  ].join("\n");

  it("masks a PEM private key block line by line, across chunks, and reports it once", () => {
    const text = `before\n${pem}\nafter the key\n`;
    const expected = `before\n${MASK}\n${MASK}\n\n${MASK}\n${MASK}\n${MASK}\nafter the key\n`;
    for (const chunks of [[text], oneByOne(text)]) {
      const { out, found } = run(chunks);
      expect(out).toBe(expected);
      expect(found).toEqual([{ kind: "private-key" }]);
    }
  });

  it("masks a PEM block written on one line with escaped newlines", () => {
    const json = `{"private_key": "${pem.replace(/\n/g, "\\n")}\\n", "x": 1}\n`;
    const { out, found } = run([json]);
    expect(out).toBe(`{"private_key": "${MASK}\\n", "x": 1}\n`);
    expect(found).toEqual([{ kind: "private-key" }]);
  });

  it("an unterminated block ends at the first line that is not key material", () => {
    const { out } = run(["-----BEGIN PRIVATE KEY-----\nMIIEabc\nnot key material: yes it is.\n"]);
    expect(out).toBe(`${MASK}\n${MASK}\nnot key material: yes it is.\n`);
  });

  it("does not report a registered value that happens to look like a credential", () => {
    const found: Detection[] = [];
    const set = new SecretSet([["OIDC_TOKEN", jwt]]);
    const out = feed(createMasker(set, { onDetection: (d) => found.push(d) }), [`t=${jwt}\n`]);
    expect(out).toBe(`t=${MASK}\n`);
    expect(found).toEqual([]);
  });

  it("detection can be turned off", () => {
    const out = feed(createMasker(new SecretSet(), { detectCredentials: false }), ["AKIAIOSFODNN7EXAMPLE\n"]);
    expect(out).toBe("AKIAIOSFODNN7EXAMPLE\n");
  });

  it("releases partial lines at whitespace without waiting for the newline", () => {
    const f = createMasker(new SecretSet());
    expect(f.push("Downloading 45% ")).toBe("Downloading 45% ");
    expect(f.push("AKIAIOSFODNN7EXAM")).toBe("");
    expect(f.push("PLE")).toBe("");
    expect(f.flush()).toBe(MASK);
  });
});

describe("::add-mask::", () => {
  const V = "runtime-token-123";

  it("registers the value, drops the command line and masks later occurrences", () => {
    const { set, filter } = masker([]);
    const out = feed(filter, [`before\n::add-mask::${V}\nuse ${V} now\n`]);
    expect(out).toBe(`before\nuse ${MASK} now\n`);
    expect(set.size).toBe(1);
  });

  it("never emits the value whatever the chunking, including split inside the command", () => {
    const text = `a\n  ::add-mask::${V}\r\nthen ${V}\n`;
    for (let p = 0; p <= text.length; p++) {
      for (let q = p; q <= text.length; q += 3) {
        const out = feed(masker([]).filter, [text.slice(0, p), text.slice(p, q), text.slice(q)]);
        expect(out).toBe(`a\nthen ${MASK}\n`);
      }
    }
    expect(feed(masker([]).filter, oneByOne(text))).toBe(`a\nthen ${MASK}\n`);
  });

  it("applies to the job's other streams through the shared set", () => {
    const set = new SecretSet();
    const stdout = createMasker(set);
    const stderr = createMasker(set);
    expect(stdout.push(`::add-mask::${V}\n`)).toBe("");
    expect(stderr.push(`err ${V}\n`)).toBe(`err ${MASK}\n`);
  });

  it("masks the value's encodings, and unescapes %0A for multi-line values", () => {
    const { filter } = masker([]);
    const out = feed(filter, [
      `::add-mask::ab%0Acdefgh%25x\n${Buffer.from(V).toString("hex")} ab\ncdefgh%x\n`,
    ]);
    expect(out).toBe(`${Buffer.from(V).toString("hex")} ${MASK}\n`);
    const { filter: f2 } = masker([]);
    expect(feed(f2, [`::add-mask::${V}\n${Buffer.from(V).toString("hex")}\n`])).toBe(`${MASK}\n`);
  });

  it("refuses a short value with a notice that does not echo it", () => {
    const events: unknown[] = [];
    const set = new SecretSet();
    const out = feed(createMasker(set, { onAddMask: (e) => events.push(e) }), ["::add-mask::q7z\n"]);
    expect(out).not.toContain("q7z");
    expect(out).toContain("shorter than 6 characters");
    expect(events).toEqual([{ accepted: false, name: "add-mask #1", reason: "too-short" }]);
    expect(set.size).toBe(0);
  });

  it("redacts the rest of a line that mentions the command mid-line (set -x tracing echo)", () => {
    const { set, filter } = masker([]);
    const out = feed(filter, [`+ echo '::add-mask::${V}'\n::add-mask::${V}\nok ${V}\n`]);
    expect(out).toBe(`+ echo '::add-mask::${MASK}\nok ${MASK}\n`);
    expect(set.size).toBe(1);
  });

  it("registers a command cut off by the end of the stream", () => {
    const { set, filter } = masker([]);
    expect(feed(filter, [`x\n::add-mask::${V.slice(0, 5)}`, V.slice(5)])).toBe("x\n");
    expect(set.size).toBe(1);
  });

  it("passes look-alikes through untouched and can be turned off", () => {
    const text = "::add-mas\n:: add-mask::x\n::add-mask:";
    expect(feed(masker([]).filter, oneByOne(text))).toBe(text);
    const off = createMasker(new SecretSet(), { addMask: false });
    expect(feed(off, [`::add-mask::${V}\n`])).toBe(`::add-mask::${V}\n`);
  });
});

describe("maskText", () => {
  it("masks a whole string at once and leaves ::add-mask:: alone", () => {
    const set = new SecretSet([["A", SECRET]]);
    expect(maskText(set, `error: ${SECRET} rejected`)).toBe(`error: ${MASK} rejected`);
  });
});
