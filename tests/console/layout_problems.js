// What overflows or is cut on the console page shown, in words; [] when nothing is.
// Run by test_console_browser.py (page.evaluate): the page scrolls sideways; a box whose
// overflow is not visible cuts or scrolls its content; an element ends past the window (the
// outermost only); a picture's text runs past the picture, or over the edge of a bar (a label
// is inside its bar or clear of it).
() => {
  const problems = [];
  const name = (el) => {
    const cls = typeof el.className === "string" ? el.className : el.className.baseVal;
    const text = (el.textContent || "").trim().slice(0, 40);
    return `<${el.tagName.toLowerCase()}${cls ? " class=" + cls : ""}> "${text}"`;
  };
  const doc = document.documentElement;
  const width = doc.clientWidth;
  if (doc.scrollWidth > width) {
    problems.push(`the page scrolls sideways: ${doc.scrollWidth} > ${width} px`);
  }
  const past = (el) => {
    const rect = el.getBoundingClientRect();
    return rect.width > 0 && rect.right > width + 1;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (el instanceof SVGElement) continue;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.display === "contents") continue;
    if (style.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1) {
      problems.push(
        `${name(el)} cuts or scrolls its content: ${el.scrollWidth} > ${el.clientWidth} px`
      );
    }
    if (past(el) && !past(el.parentElement)) {
      const right = Math.round(el.getBoundingClientRect().right);
      problems.push(`${name(el)} ends past the window: ${right} > ${width} px`);
    }
  }
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const r = text.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1) {
        const span = `${Math.round(r.left)}..${Math.round(r.right)}`;
        const frame = `${Math.round(box.left)}..${Math.round(box.right)}`;
        problems.push(`${name(text)} is cut by its picture: ${span} outside ${frame}`);
      }
      for (const bar of text.parentNode.querySelectorAll(":scope > rect.bar")) {
        const b = bar.getBoundingClientRect();
        const apart = r.right <= b.left + 1 || r.left >= b.right - 1
          || r.bottom <= b.top + 1 || r.top >= b.bottom - 1;
        const inside = r.left >= b.left && r.right <= b.right
          && r.top >= b.top && r.bottom <= b.bottom;
        if (!apart && !inside) problems.push(`${name(text)} runs over the edge of a bar`);
      }
    }
  }
  return problems;
}
