"""Forms as a browser sends them: from a page's HTML (HTTP tests), or from what the editor
shows for an entity (unit tests, no HTML)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hub.ui import dir_forms
from hub.ui.dir_widgets import Cities
from hub.ui.rule_form import Block

ROW_ATTRS = ("op", "key", "text", "low", "high", "entity", "pipeline", "stage")


class _Form(HTMLParser):
    """The successful controls of one form, in page order."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: tuple[str, bool] | None = None
        self._options: list[tuple[str, bool]] = []
        self._option: dict[str, Any] | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and a.get("name"):
            self._select, self._options = (a["name"], "multiple" in a), []
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)
        elif self._option is not None:
            self._option["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option" and self._option is not None:
            o = self._option
            self._options.append(
                (o["value"] if o["value"] is not None else o["text"], o["selected"])
            )
            self._option = None
        elif tag == "select" and self._select is not None:
            name, multiple = self._select
            chosen = [v for v, selected in self._options if selected]
            if not multiple and not chosen and self._options:
                chosen = [self._options[0][0]]
            self.fields.extend((name, v) for v in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None


def html_form(html: str, form_id: str = "entity-form") -> list[tuple[str, str]]:
    parser = _Form(form_id)
    parser.feed(html)
    return parser.fields


def encode(spec: dir_forms.FieldSpec, shown: Any) -> dict[str, str]:
    """The inputs of one field as the edit page would submit them untouched."""
    if isinstance(shown, Block):
        out: dict[str, str] = {}
        for r in shown.rows:
            p = f"{spec.name}-r{r.token}-"
            out[p + "field"] = out[p + "was"] = r.code
            out.update({p + a: getattr(r, a) for a in ROW_ATTRS})
            out[p + "picked"] = "\n".join(r.picked)
        out[f"{spec.name}-yaml"] = shown.expert
        return out
    if isinstance(shown, Cities):
        return {spec.name: shown.plain, f"{spec.name}-context": shown.context}
    if spec.kind == "target":
        return {f"{spec.name}-{a}": v for a, v in shown.items()}
    if spec.kind == "multi":
        return {spec.name: "\n".join(shown)}
    return {spec.name: shown}


def entity_form(section: str, entity: Any) -> dict[str, str]:
    form: dict[str, str] = {}
    for spec in dir_forms.specs_for(section, entity):
        form.update(encode(spec, dir_forms.show(spec, entity.get(spec.name))))
    return form
