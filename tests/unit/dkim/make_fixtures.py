#!/usr/bin/python3
# Makes the DKIM interop fixtures: messages signed by dkimpy (python3-dkim)
# and Mail::DKIM (libmail-dkim-perl), which test_dkim.cpp verifies offline.
# Run once; the outputs are committed and the tests never run this.
#
#   /usr/bin/python3 tests/unit/dkim/make_fixtures.py tests/unit/dkim
#
# Keys are made fresh with the openssl CLI in a temporary directory and only
# the public halves (keys.txt) are kept. Every fixture is checked with dkimpy
# before it is written, so a fixture that does not verify is never committed.

import base64
import os
import subprocess
import sys
import tempfile

import dkim

DOMAIN = b"example.org"
RSA_SELECTOR = b"rsa2048"
ED_SELECTOR = b"ed25519"


def run(*cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout


def make_keys(tmp):
    rsa_pem = os.path.join(tmp, "rsa.pem")
    ed_pem = os.path.join(tmp, "ed.pem")
    run("openssl", "genrsa", "-traditional", "-out", rsa_pem, "2048")
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", ed_pem)
    rsa_pub = run("openssl", "rsa", "-in", rsa_pem, "-pubout", "-outform", "DER")
    # The last 32 bytes of the DER forms are the raw seed and public key.
    ed_seed = run("openssl", "pkey", "-in", ed_pem, "-outform", "DER")[-32:]
    ed_pub = run("openssl", "pkey", "-in", ed_pem, "-pubout", "-outform", "DER")[-32:]
    return {
        "rsa_pem_path": rsa_pem,
        "rsa_pem": open(rsa_pem, "rb").read(),
        "ed_seed_b64": base64.b64encode(ed_seed),
        "records": {
            RSA_SELECTOR + b"._domainkey." + DOMAIN:
                b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub),
            ED_SELECTOR + b"._domainkey." + DOMAIN:
                b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub),
        },
    }


PLAIN = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Date: Tue, 03 Mar 2026 10:15:00 +0000\r\n"
    b"Message-ID: <plain-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b"\r\n"
    b"The numbers are attached in the usual place.\r\n"
    b"\r\n"
    b"-- \r\n"
    b"Alice\r\n"
)

# Real-world shape: Received chain, folded Subject and To (tabs and spaces),
# trailing whitespace on header and body lines, odd spacing around a colon
# value, multipart body and trailing empty lines.
REALWORLD = (
    b"Received: from mail-out.example.org (mail-out.example.org [192.0.2.25])\r\n"
    b"\tby mx.example.net (Postfix) with ESMTPS id 4Rk2mT0XyZz9sT1\r\n"
    b"\tfor <bob@example.net>; Tue, 03 Mar 2026 10:15:02 +0000 (UTC)\r\n"
    b"Received: from [10.0.0.7] (unknown [198.51.100.7])\r\n"
    b"        by mail-out.example.org (Postfix) with ESMTPSA id 9F1C2A0\r\n"
    b"        for <bob@example.net>; Tue, 03 Mar 2026 10:15:01 +0000 (UTC)\r\n"
    b"From:   \"Alice  Example\" <alice@example.org>  \r\n"
    b"To: Bob <bob@example.net>,\r\n"
    b"  Carol <carol@example.net>,\t\r\n"
    b"\tDave <dave@example.net>\r\n"
    b"Subject: Re: [team] a rather long subject line that a mail user agent\r\n"
    b"\thas folded   over two lines\t \r\n"
    b"Date: Tue, 03 Mar 2026 10:15:00 +0000\r\n"
    b"Message-ID: <20260303101500.GA1234@example.org>\r\n"
    b"In-Reply-To: <earlier@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative;\r\n"
    b" boundary=\"----=_Part_42_1234567890\"\r\n"
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"\r\n"
    b"------=_Part_42_1234567890\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Hi all,   \r\n"
    b"\r\n"
    b"  Indented\tline with\t\ttabs  and   spaces.\t\r\n"
    b"Caf=C3=A9 at noon?  \r\n"
    b"\r\n"
    b"------=_Part_42_1234567890\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Hi all,</p>   \r\n"
    b"<p>Caf\xc3\xa9 at noon?</p>\r\n"
    b"------=_Part_42_1234567890--\r\n"
    b"\r\n"
    b"\r\n"
    b" \r\n"
    b"\r\n"
)

STD_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
# Over-signed: From and Subject twice, so added copies would break the signature.
OVERSIGNED = [b"from", b"from", b"to", b"subject", b"subject", b"date", b"message-id",
              b"in-reply-to", b"mime-version", b"content-type", b"reply-to"]


def dkimpy_sign(msg, keys, algo, canon, headers=STD_HEADERS, length=False):
    if algo == b"ed25519-sha256":
        selector, key = ED_SELECTOR, keys["ed_seed_b64"]
    else:
        selector, key = RSA_SELECTOR, keys["rsa_pem"]
    sig = dkim.sign(msg, selector, DOMAIN, key, canonicalize=canon,
                    signature_algorithm=algo, include_headers=headers, length=length)
    return sig + msg


MAIL_DKIM_SIGNER = r'''
use strict;
use Mail::DKIM::Signer;
use Mail::DKIM::TextWrap;
my ($method, $keyfile) = @ARGV;
my $signer = Mail::DKIM::Signer->new(
    Algorithm => "rsa-sha256", Method => $method, Domain => "example.org",
    Selector => "rsa2048", KeyFile => $keyfile);
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z//;
    $signer->PRINT("$line\015\012");
}
$signer->CLOSE;
print $signer->signature->as_string, "\015\012";
'''


def mail_dkim_sign(msg, keys, method):
    sig = run("/usr/bin/perl", "-e", MAIL_DKIM_SIGNER, method, keys["rsa_pem_path"], stdin=msg)
    return sig + msg


def check(name, msg, keys, nsigs):
    def dnsfunc(qname, timeout=5):
        return keys["records"].get(qname.rstrip(b"."), b"")
    d = dkim.DKIM(msg)
    for i in range(nsigs):
        if not d.verify(idx=i, dnsfunc=dnsfunc):
            sys.exit("%s: dkimpy does not verify signature %d" % (name, i))


def main():
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        keys = make_keys(tmp)
        fixtures = {}
        fixtures["rsa-simple-simple.eml"] = (dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"simple", b"simple")), 1)
        fixtures["rsa-relaxed-relaxed.eml"] = (dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"relaxed", b"relaxed")), 1)
        fixtures["rsa-relaxed-simple.eml"] = (dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"relaxed", b"simple")), 1)
        fixtures["ed25519-relaxed-relaxed.eml"] = (
            dkimpy_sign(PLAIN, keys, b"ed25519-sha256", (b"relaxed", b"relaxed")), 1)
        fixtures["ed25519-simple-simple.eml"] = (
            dkimpy_sign(PLAIN, keys, b"ed25519-sha256", (b"simple", b"simple")), 1)

        # Three signers on one message, newest on top: Mail::DKIM simple/simple
        # over dkimpy ed25519 relaxed/simple over dkimpy rsa relaxed/relaxed.
        multi = dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"relaxed", b"relaxed"))
        multi = dkimpy_sign(multi, keys, b"ed25519-sha256", (b"relaxed", b"simple"))
        multi = mail_dkim_sign(multi, keys, "simple")
        fixtures["multi-signature.eml"] = (multi, 3)

        # l=: signed over the body as sent, then a list footer appended, which
        # the signature must survive.
        footer = b"_______________________________________________\r\nteam mailing list\r\n"
        fixtures["length-rsa-footer.eml"] = (
            dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"relaxed", b"simple"), length=True) + footer, 1)
        fixtures["length-ed25519-footer.eml"] = (
            dkimpy_sign(PLAIN, keys, b"ed25519-sha256", (b"simple", b"simple"), length=True) + footer, 1)

        fixtures["realworld-relaxed.eml"] = (
            dkimpy_sign(REALWORLD, keys, b"rsa-sha256", (b"relaxed", b"relaxed"), headers=OVERSIGNED), 1)
        fixtures["realworld-ed25519-relaxed-simple.eml"] = (
            dkimpy_sign(REALWORLD, keys, b"ed25519-sha256", (b"relaxed", b"simple"), headers=OVERSIGNED), 1)
        fixtures["realworld-maildkim-relaxed.eml"] = (mail_dkim_sign(REALWORLD, keys, "relaxed"), 1)
        fixtures["realworld-maildkim-simple.eml"] = (mail_dkim_sign(REALWORLD, keys, "simple"), 1)

        # Stored with bare LF line ends, as some MTAs hand messages over.
        lf = dkimpy_sign(PLAIN, keys, b"rsa-sha256", (b"simple", b"simple")).replace(b"\r\n", b"\n")
        fixtures["lf-only-rsa-simple.eml"] = (lf, 1)

        for name, (msg, nsigs) in sorted(fixtures.items()):
            check(name, msg, keys, nsigs)
            with open(os.path.join(out, name), "wb") as f:
                f.write(msg)
        with open(os.path.join(out, "keys.txt"), "wb") as f:
            for qname, txt in sorted(keys["records"].items()):
                f.write(qname + b" " + txt + b"\n")


if __name__ == "__main__":
    main()
