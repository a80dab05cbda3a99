"""An invoice PDF made by the DAG, sent on WhatsApp as a document.

``make_invoice_pdf`` writes a one-page PDF with plain Python (no PDF library: the format is text
plus a byte-offset table). ``send_invoice`` gives that local file to ``WaslahSendMediaOperator``,
which uploads it to Waslah first (``POST /uploads``), then sends the stored file as a
``document`` (the type is inferred from the ``.pdf`` extension) with a caption.

The file must be readable by the worker that runs ``send_invoice``: with several workers, write
it to shared storage, or make and send it in one task with ``WaslahHook().upload(...)``.

Settings (Airflow Variables or env ``AIRFLOW_VAR_<NAME>``): ``waslah_instance_key`` (``demo``),
``waslah_customer_phone`` (``6281234560201``).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_waslah.operators.waslah import WaslahSendMediaOperator

INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"
CUSTOMER_PHONE = "{{ var.value.get('waslah_customer_phone', '6281234560201') }}"


def simple_pdf(lines: list[str]) -> bytes:
    """A valid one-page A4 PDF showing ``lines`` in Helvetica (ASCII/Latin-1 text)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    # Page content: Helvetica 12 pt from (72, 790), 18 pt line spacing (TL); `'` = next line + show.
    content = "BT /F1 12 Tf 72 790 Td 18 TL " + " ".join(f"({escape(line)}) '" for line in lines) + " ET"
    stream = content.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))  # the xref table points at each object's first byte
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


with DAG(
    dag_id="waslah_invoice_pdf",
    schedule="@monthly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "finance-data", "retries": 1, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
):

    @task
    def make_invoice_pdf(ds_nodash: str | None = None) -> str:
        """Write ``INV-<date>.pdf`` and return its path (the XCom the send task reads)."""
        number = f"INV-{ds_nodash}"
        lines = [
            f"INVOICE {number}",
            "PT Contoh Sejahtera - Jl. Sudirman 1, Jakarta",
            "",
            "Langganan Waslah Pro (1 bulan)      Rp 1.500.000",
            "PPN 11%                              Rp   165.000",
            "TOTAL                                Rp 1.665.000",
        ]
        folder = Path(os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir()) / "waslah_examples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{number}.pdf"
        path.write_bytes(simple_pdf(lines))
        return str(path)

    # file_path: upload first, then send. `type` is inferred (.pdf -> document); the filename is
    # what the customer sees in WhatsApp.
    WaslahSendMediaOperator(
        task_id="send_invoice",
        instance_key=INSTANCE_KEY,
        to=CUSTOMER_PHONE,
        file_path=make_invoice_pdf(),
        filename="INV-{{ ds_nodash }}.pdf",
        caption="Invoice {{ ds }}: total Rp 1.665.000, jatuh tempo 14 hari. Terima kasih!",
        wait_for="sent",
    )
