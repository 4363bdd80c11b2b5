#!/usr/bin/python3
"""Writes N realistic messages of about 20 KB into a Maildir's new/ folder, deterministically:
Portuguese text in quoted-printable, an HTML alternative, and a small base64 attachment, with
the receiving server's Authentication-Results (read when the mailbox trusts mx.acme.example). Files
are named as Dovecot's delivery names them (with S= and W= sizes)."""
import base64
import os
import random
import sys

def main():
    directory, count = sys.argv[1], int(sys.argv[2])
    os.makedirs(os.path.join(directory, "new"), exist_ok=True)
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    rng = random.Random(20261125)
    words = ("a impressora do terceiro andar não imprime desde ontem e já reiniciamos o equipamento "
             "solicitação de acesso ao sistema financeiro para a nova colaboradora urgente por favor "
             "obrigado atenciosamente equipe de suporte relatório de erros em anexo").split()
    for n in range(1, count + 1):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(14)) for _ in range(110))
        qp = text.replace("=", "=3D").encode("utf-8")
        body_qp = "".join(f"={b:02X}" if b > 126 else chr(b) for b in qp)
        html = "<html><body><p>" + text.replace("\n", "</p><p>")[:3000] + "</p></body></html>"
        attachment = base64.encodebytes(bytes(rng.getrandbits(8) for _ in range(3000))).decode()
        message = f"""Return-Path: <cliente{n}@acme.example>
Authentication-Results: mx.acme.example; spf=pass smtp.mailfrom=cliente{n}@acme.example; dkim=pass header.d=acme.example header.s=s1; dmarc=pass header.from=acme.example
From: =?UTF-8?Q?Cliente_N=C3=BAmero_{n}?= <cliente{n}@acme.example>
To: Suporte ACME <suporte@acme.example>
Subject: =?UTF-8?Q?Solicita=C3=A7=C3=A3o_{n}:_impressora_n=C3=A3o_imprime?=
Message-ID: <bench-{n}@acme.example>
Date: Wed, 25 Nov 2026 12:00:00 -0300
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-{n}"

--mixed-{n}
Content-Type: multipart/alternative; boundary="alt-{n}"

--alt-{n}
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

{body_qp}
--alt-{n}
Content-Type: text/html; charset=utf-8

{html}
--alt-{n}--

--mixed-{n}
Content-Type: application/octet-stream; name="log-{n}.bin"
Content-Disposition: attachment; filename="log-{n}.bin"
Content-Transfer-Encoding: base64

{attachment}
--mixed-{n}--
"""
        data = message.replace("\n", "\r\n").encode("utf-8")
        # Named as Dovecot's own delivery names a file: with its size (S=) and its size with
        # CRLF line ends (W=, the same here), so that RFC822.SIZE is answered from the name
        # as for delivered mail, instead of by reading every message once more.
        name = f"{1764079200 + n}.{n:05d}.bench,S={len(data)},W={len(data)}"
        with open(os.path.join(directory, "new", name), "wb") as handle:
            handle.write(data)

if __name__ == "__main__":
    main()
