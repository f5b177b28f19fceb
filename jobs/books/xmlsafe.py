"""Safe XML/HTML parsing: no entity expansion, no DTD loading, no network, default size limits.

These are the lxml settings that make it as safe as defusedxml for our use (billion-laughs needs entity
expansion, XXE needs external entities or DTD loading; both are off).
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree
from lxml import html as lxml_html

EPUB_NS = "http://www.idpf.org/2007/ops"
_EPUB_TYPE = f"{{{EPUB_NS}}}type"


def _xml_parser(recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=recover,
        remove_comments=True,
        remove_pis=True,
    )


class XmlError(Exception):
    """A document could not be parsed at all."""


def parse_xml(data: bytes, name: str) -> etree._Element:
    """Strict parse of a package document (container, OPF, NCX, encryption.xml)."""
    try:
        root = etree.fromstring(data, parser=_xml_parser())
    except etree.XMLSyntaxError as exc:
        # Package documents are small and machine-written; recovery rescues e.g. a stray '&'.
        root = etree.fromstring(data, parser=_xml_parser(recover=True))
        if root is None:
            raise XmlError(f"{name} is not well-formed XML: {exc}") from exc
    if root is None:
        raise XmlError(f"{name} is empty")
    return root


def parse_xhtml(data: bytes, name: str, warn: Callable[[str], None]) -> etree._Element:
    """Parse a content document; when it is not well-formed XML, recover with the HTML parser and warn."""
    try:
        root = etree.fromstring(data, parser=_xml_parser())
        if root is not None:
            return root
    except etree.XMLSyntaxError as exc:
        warn(f"{name} is not well-formed XHTML ({exc.msg}); read it with the forgiving HTML parser instead")
    parser = lxml_html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, huge_tree=False)
    try:
        root = lxml_html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise XmlError(f"{name} could not be parsed even as HTML: {exc}") from exc
    return root


def local_name(el: etree._Element) -> str:
    """Tag without namespace, lower-cased ('' for comments and processing instructions)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    if tag.startswith("{"):
        tag = tag.split("}", 1)[1]
    return tag.lower()


def epub_types(el: etree._Element) -> set[str]:
    """The element's epub:type tokens plus its ARIA role (doc-*) tokens, lower-cased.

    Works for both parsers: XML keeps the namespace, the HTML parser keeps the literal 'epub:type' name.
    """
    raw = el.get(_EPUB_TYPE) or el.get("epub:type") or ""
    tokens = {t.lower() for t in raw.split()}
    role = el.get("role")
    if role:
        tokens.update(t.lower() for t in role.split())
    return tokens
