"""Safe XML/HTML parsing: no entity expansion, no DTD loading, no network, default size limits.

These are the lxml settings that make it as safe as defusedxml for our use (billion-laughs needs entity
expansion, XXE needs external entities or DTD loading; both are off).
"""

from __future__ import annotations

from collections.abc import Callable
from html.entities import html5

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
    return settle_entities(root)


def settle_entities(root: etree._Element) -> etree._Element:
    """Replace the entity references lxml keeps unexpanded (resolve_entities=False) by their text.

    HTML's named entities (``&mdash;`` in an XHTML 1.1 file with a DOCTYPE) become their characters; anything
    else (``&xxe;`` pointing at an external file) is dropped, so no reference text such as "T &xxe;" reaches a
    title or a chunk. Nothing is ever loaded.
    """
    for entity in list(root.iter(etree.Entity)):
        text = html5.get(f"{entity.name};", "") + (entity.tail or "")
        parent = entity.getparent()
        if parent is None:
            continue
        previous = entity.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
        parent.remove(entity)
    return root


def parse_xhtml(data: bytes, name: str, warn: Callable[[str], None]) -> etree._Element:
    """Parse a content document; when it is not well-formed XML, recover with the HTML parser and warn."""
    try:
        root = etree.fromstring(data, parser=_xml_parser())
        if root is not None:
            return settle_entities(root)
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
