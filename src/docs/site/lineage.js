// tsform docs: the lineage graph. A DAG of the selected node's ancestors and descendants (or the
// whole project), laid out in layers and drawn as SVG; clicking a node selects it (URL hash).
(function () {
  'use strict';

  var dom = window.TsformDocs.dom;
  var el = dom.el;
  var svg = dom.svg;
  var href = dom.href;
  var KIND_ORDER = { source: 0, tenants: 1, seed: 1, vault: 1, model: 2 };
  // Below this scale the labels get too small to read: the graph keeps its size and scrolls instead.
  var MIN_SCALE = 0.7;

  function kindOrder(kind) {
    return kind in KIND_ORDER ? KIND_ORDER[kind] : 1;
  }

  /** The graph functions over one project's nodes (id → { parents, children, label, kind, … }). */
  function createLineage(nodes) {
    function ancestorsOf(id) {
      return closure(id, 'parents');
    }

    function descendantsOf(id) {
      return closure(id, 'children');
    }

    function closure(id, direction) {
      var seen = {};
      var stack = nodes[id][direction].slice();
      while (stack.length > 0) {
        var next = stack.pop();
        if (seen[next] || !nodes[next]) continue;
        seen[next] = true;
        stack.push.apply(stack, nodes[next][direction]);
      }
      return Object.keys(seen).sort();
    }

    /**
     * Layered layout: a node's layer is its longest path from a root inside the subgraph; within a
     * layer, nodes are ordered by the mean position of their neighbours (a few barycenter sweeps
     * down and up), which removes most edge crossings in a DAG of this size.
     */
    function layout(subset) {
      var inSet = {};
      subset.forEach(function (id) {
        inSet[id] = true;
      });
      var parents = {};
      var children = {};
      subset.forEach(function (id) {
        parents[id] = nodes[id].parents.filter(function (p) {
          return inSet[p];
        });
        children[id] = nodes[id].children.filter(function (c) {
          return inSet[c];
        });
      });
      // Longest-path layering in topological order (Kahn).
      var indegree = {};
      var layer = {};
      subset.forEach(function (id) {
        indegree[id] = parents[id].length;
        layer[id] = 0;
      });
      var queue = subset.filter(function (id) {
        return indegree[id] === 0;
      });
      var placed = 0;
      while (queue.length > 0) {
        var id = queue.shift();
        placed++;
        children[id].forEach(function (c) {
          layer[c] = Math.max(layer[c], layer[id] + 1);
          if (--indegree[c] === 0) queue.push(c);
        });
      }
      if (placed !== subset.length) throw new Error('lineage has a cycle');
      // A root (a source, a seed, tenants) sits just before its first reader, not in column 0:
      // its edges stay short instead of crossing the boxes in between.
      subset.forEach(function (id) {
        if (parents[id].length === 0 && children[id].length > 0) {
          layer[id] = Math.min.apply(
            null,
            children[id].map(function (c) {
              return layer[c];
            }),
          ) - 1;
        }
      });

      var layers = [];
      subset.forEach(function (id) {
        (layers[layer[id]] = layers[layer[id]] || []).push(id);
      });
      layers.forEach(function (ls) {
        ls.sort(function (a, b) {
          return kindOrder(nodes[a].kind) - kindOrder(nodes[b].kind) || nodes[a].label.localeCompare(nodes[b].label);
        });
      });
      var pos = {};
      function index() {
        layers.forEach(function (ls) {
          ls.forEach(function (id, i) {
            pos[id] = i;
          });
        });
      }
      function sweep(ls, neighbours) {
        var key = {};
        ls.forEach(function (id) {
          var ns = neighbours[id];
          key[id] = ns.length === 0 ? pos[id] : ns.reduce(function (s, n) {
            return s + pos[n];
          }, 0) / ns.length;
        });
        ls.sort(function (a, b) {
          return key[a] - key[b] || pos[a] - pos[b];
        });
        ls.forEach(function (id, i) {
          pos[id] = i;
        });
      }
      index();
      for (var round = 0; round < 4; round++) {
        for (var d = 1; d < layers.length; d++) sweep(layers[d], parents);
        for (var u = layers.length - 2; u >= 0; u--) sweep(layers[u], children);
      }

      var CHAR = 7.25;
      var BOX_H = 28;
      var ROW = 44;
      var GAP_X = 56;
      var PAD = 12;
      var width = {};
      var colWidth = layers.map(function (ls) {
        return ls.reduce(function (w, id) {
          width[id] = Math.max(80, Math.round(nodes[id].label.length * CHAR + 20));
          return Math.max(w, width[id]);
        }, 0);
      });
      var tallest = layers.reduce(function (m, ls) {
        return Math.max(m, ls.length);
      }, 0);
      var x = PAD;
      var coords = {};
      layers.forEach(function (ls, li) {
        var offset = ((tallest - ls.length) * ROW) / 2;
        ls.forEach(function (id, i) {
          coords[id] = { x: x, y: PAD + offset + i * ROW, w: width[id], h: BOX_H };
        });
        x += colWidth[li] + GAP_X;
      });
      return { coords: coords, parents: parents, width: x - GAP_X + PAD, height: PAD * 2 + tallest * ROW - (ROW - BOX_H) };
    }

    function lineageSvg(subset, selected) {
      var g = layout(subset);
      var root = svg('svg', {
        class: 'lineage',
        'data-testid': 'lineage',
        width: g.width,
        height: g.height,
        viewBox: '0 0 ' + g.width + ' ' + g.height,
        role: 'img',
        'aria-label': 'lineage graph',
      });
      root.appendChild(
        svg('defs', null, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))),
      );
      var edges = svg('g', { class: 'edges' });
      subset.forEach(function (id) {
        g.parents[id].forEach(function (p) {
          var a = g.coords[p];
          var b = g.coords[id];
          var x1 = a.x + a.w;
          var y1 = a.y + a.h / 2;
          var x2 = b.x;
          var y2 = b.y + b.h / 2;
          var mid = (x2 - x1) / 2;
          var hot = selected && (id === selected || p === selected);
          edges.appendChild(
            svg('path', {
              d: 'M ' + x1 + ' ' + y1 + ' C ' + (x1 + mid) + ' ' + y1 + ', ' + (x2 - mid) + ' ' + y2 + ', ' + x2 + ' ' + y2,
              class: 'edge' + (hot ? ' hot' : ''),
              'marker-end': 'url(#arrow)',
              'data-from': p,
              'data-to': id,
            }),
          );
        });
      });
      root.appendChild(edges);
      var boxes = svg('g', { class: 'nodes' });
      subset.forEach(function (id) {
        var n = nodes[id];
        var c = g.coords[id];
        var group = svg(
          'g',
          {
            class: 'node kind-' + n.kind + (n.materialized === 'ephemeral' ? ' ephemeral' : '') + (id === selected ? ' selected' : ''),
            'data-node': id,
            transform: 'translate(' + c.x + ',' + c.y + ')',
            tabindex: 0,
            role: 'link',
            'aria-label': n.label,
          },
          svg('title', null, n.kind + ' ' + n.label + ' (' + n.scope + ', ' + n.materialized + ')'),
          svg('rect', { width: c.w, height: c.h, rx: 5, ry: 5 }),
          svg('text', { x: 10, y: c.h / 2 + 4 }, n.label),
        );
        group.addEventListener('click', function () {
          location.hash = href(n.route);
        });
        group.addEventListener('keydown', function (e) {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            location.hash = href(n.route);
          }
        });
        boxes.appendChild(group);
      });
      root.appendChild(boxes);
      return el('div', { class: 'lineage-wrap' }, root);
    }

    /**
     * Once the graph is in the page: a graph a little wider than its panel is scaled down to fit;
     * a much wider one keeps its size and scrolls inside the panel (never the page), scrolled so
     * that the selected node is in the middle of what shows.
     */
    function fit(wrap) {
      if (!wrap) return;
      var root = wrap.querySelector('svg.lineage');
      var width = Number(root.getAttribute('width'));
      var height = Number(root.getAttribute('height'));
      var style = getComputedStyle(wrap);
      var room = wrap.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      var scale = width > room && width * MIN_SCALE <= room ? room / width : 1;
      root.style.width = Math.floor(width * scale) + 'px';
      root.style.height = Math.floor(height * scale) + 'px';
      wrap.setAttribute('data-scale', scale.toFixed(3));
      var selected = root.querySelector('g.node.selected');
      if (!selected) return;
      var box = selected.getBoundingClientRect();
      var view = wrap.getBoundingClientRect();
      wrap.scrollLeft += box.left + box.width / 2 - (view.left + wrap.clientWidth / 2);
      wrap.scrollTop += box.top + box.height / 2 - (view.top + wrap.clientHeight / 2);
    }

    function legend() {
      return el(
        'p',
        { class: 'legend' },
        el('span', { class: 'swatch kind-source' }),
        'source ',
        el('span', { class: 'swatch kind-seed' }),
        'seed ',
        el('span', { class: 'swatch kind-tenants' }),
        'tenants ',
        el('span', { class: 'swatch kind-vault' }),
        'vault ',
        el('span', { class: 'swatch kind-model' }),
        'model ',
        el('span', { class: 'swatch ephemeral' }),
        'ephemeral (inlined)',
      );
    }

    return { ancestorsOf: ancestorsOf, descendantsOf: descendantsOf, svg: lineageSvg, legend: legend, fit: fit };
  }

  window.TsformDocs.createLineage = createLineage;
})();
