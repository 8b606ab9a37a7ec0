// tsform docs: DOM helpers shared by the site's scripts. Text always goes in as text nodes and
// attributes through setAttribute: nothing from the project is ever parsed as HTML.
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';

  /** Creates an element; string children become text nodes (never parsed as HTML). */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      node.setAttribute(k, v === true ? '' : String(v));
    });
  }

  function append(parent, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) {
        append(parent, c);
      });
      return;
    }
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function href(route) {
    return '#' + route.split('/').map(encodeURIComponent).join('/');
  }

  window.TsformDocs = window.TsformDocs || {};
  window.TsformDocs.dom = { el: el, svg: svg, append: append, clear: clear, href: href };
})();
