// tsform docs: a static, dependency-free viewer of window.__TSFORM_DOCS__ (written by
// `tsform docs generate`): sidebar and search, node pages, practices. Every value from the
// project reaches the DOM through textContent or setAttribute, never through an HTML parser:
// model descriptions are user input.
(function () {
  'use strict';

  var data = window.__TSFORM_DOCS__;
  var dom = window.TsformDocs.dom;
  var el = dom.el;
  var clear = dom.clear;
  var href = dom.href;

  var main = document.getElementById('main');
  var search = document.getElementById('search');
  var state = { query: '' };

  if (!data || !data.nodes) {
    main.appendChild(el('p', { class: 'error' }, 'docs-data.js is missing or empty: run `tsform docs generate` again.'));
    return;
  }

  var nodes = data.nodes;
  var lineage = window.TsformDocs.createLineage(nodes);
  var sections = window.TsformDocs.createSections(data.last_run);
  var tableWrap = sections.tableWrap;
  var statusBadge = sections.statusBadge;
  var formatRows = sections.formatRows;
  var ids = Object.keys(nodes).sort(function (a, b) {
    return nodes[a].label.localeCompare(nodes[b].label);
  });
  var byRoute = {};
  ids.forEach(function (id) {
    byRoute[nodes[id].route] = id;
  });
  var tenantsById = {};
  data.tenants.forEach(function (t) {
    tenantsById[t.id] = t;
  });

  function nodeLink(id) {
    var n = nodes[id];
    if (!n) return el('span', { class: 'missing' }, id);
    return el('a', { href: href(n.route), class: 'node-link kind-' + n.kind, 'data-node': id }, n.label);
  }

  function badge(text, cls, title) {
    return el('span', { class: 'badge ' + (cls || ''), title: title }, text);
  }

  function phiBadge(phi) {
    var titles = {
      direct: 'direct identifier: never leaves the practice; tokenized before research',
      quasi: 'quasi-identifier: generalized (Safe Harbor) before research',
      none: 'not an identifier',
      unclassified: 'in the warehouse but not in the yml: no PHI class yet (compile --strict refuses this)',
    };
    return el('span', { class: 'phi phi-' + phi, title: titles[phi] || '', 'data-phi': phi }, phi);
  }

  // ---------------------------------------------------------------- search

  function matches(text, q) {
    return String(text).toLowerCase().indexOf(q) !== -1;
  }

  /** Columns of a node whose name matches; null when the node's own name matches. */
  function nodeMatch(n, q) {
    if (!q) return { self: true, columns: [] };
    var self = matches(n.label, q) || matches(n.id, q);
    var columns = n.columns
      .filter(function (c) {
        return matches(c.name, q);
      })
      .map(function (c) {
        return c.name;
      });
    if (!self && columns.length === 0) return null;
    return { self: self, columns: columns };
  }

  function tenantMatches(t, q) {
    if (!q) return true;
    return matches(t.id, q) || matches(t.name, q) || matches(t.timezone, q) || matches(t.pool, q) || t.tags.some(function (tag) {
      return matches(tag, q);
    });
  }

  // ---------------------------------------------------------------- sidebar

  function renderSidebar() {
    var q = state.query;
    // Relations tsform builds itself (tenants, the vault's token map) are listed with the seeds.
    var lists = { model: 'nav-models', source: 'nav-sources' };
    var counts = { 'nav-models': [0, 0], 'nav-seeds': [0, 0], 'nav-sources': [0, 0] };
    Object.keys(counts).forEach(function (listId) {
      clear(document.getElementById(listId));
    });
    ids.forEach(function (id) {
      var n = nodes[id];
      var listId = lists[n.kind] || 'nav-seeds';
      var m = nodeMatch(n, q);
      counts[listId][1]++;
      var item = el('li', { 'data-node': id, 'data-kind': n.kind, hidden: !m }, nodeLink(id));
      if (m) {
        counts[listId][0]++;
        if (m.columns.length > 0) {
          item.appendChild(el('div', { class: 'column-hits' }, 'columns: ' + m.columns.join(', ')));
        }
      }
      document.getElementById(listId).appendChild(item);
    });
    Object.keys(counts).forEach(function (listId) {
      var c = counts[listId];
      var countEl = document.getElementById(listId.replace('nav-', 'count-'));
      countEl.textContent = q ? c[0] + ' of ' + c[1] : String(c[1]);
      var list = document.getElementById(listId);
      if (q && c[0] === 0) list.appendChild(el('li', { class: 'empty' }, 'no match'));
    });

    var practices = document.getElementById('nav-practices');
    clear(practices);
    var hits = data.tenants.filter(function (t) {
      return tenantMatches(t, q);
    });
    document.getElementById('count-practices').textContent = q ? hits.length + ' of ' + data.tenants.length : String(data.tenants.length);
    if (q) {
      hits.slice(0, 25).forEach(function (t) {
        practices.appendChild(el('li', { 'data-tenant': t.id }, el('a', { href: href('practice/' + t.id) }, t.id), el('span', { class: 'muted' }, ' ' + t.name)));
      });
      if (hits.length > 25) practices.appendChild(el('li', { class: 'more' }, el('a', { href: '#practices' }, 'all ' + hits.length + ' matching practices')));
      if (hits.length === 0) practices.appendChild(el('li', { class: 'empty' }, 'no match'));
    }
  }

  function markSelected(id) {
    var items = document.querySelectorAll('#sidebar li[data-node]');
    for (var i = 0; i < items.length; i++) {
      if (items[i].getAttribute('data-node') === id) items[i].classList.add('selected');
      else items[i].classList.remove('selected');
    }
  }

  // ---------------------------------------------------------------- views

  function neighbourList(list, testid) {
    var ul = el('ul', { class: 'neighbours', 'data-testid': testid });
    if (list.length === 0) ul.appendChild(el('li', { class: 'empty' }, 'none'));
    list.forEach(function (id) {
      ul.appendChild(el('li', { 'data-node': id }, nodeLink(id)));
    });
    return ul;
  }

  function property(label, value) {
    return [el('dt', null, label), el('dd', null, value)];
  }

  function columnsTable(n) {
    if (n.columns.length === 0) return el('p', { class: 'muted' }, 'No columns documented in a properties file, and the relation is not built yet.');
    var body = el('tbody');
    n.columns.forEach(function (c) {
      body.appendChild(
        el(
          'tr',
          { 'data-column': c.name },
          el('td', { class: 'mono' }, c.name),
          el('td', null, phiBadge(c.phi)),
          el(
            'td',
            { class: 'mono muted type', 'data-type-source': c.type_source || 'none', title: c.type_source === 'warehouse' ? 'from the warehouse (last build)' : c.type_source === 'yml' ? 'from the yml (data_type)' : 'unknown: not built yet and no data_type in the yml' },
            c.data_type || '–',
            c.type_source === 'yml' ? el('span', { class: 'type-source' }, ' yml') : null,
          ),
          el('td', null, c.description || ''),
          el(
            'td',
            null,
            c.tests.map(function (t) {
              return badge(t, 'test');
            }),
          ),
        ),
      );
    });
    return tableWrap(el('table', { class: 'columns', 'data-testid': 'columns' }, el('thead', null, el('tr', null, el('th', null, 'column'), el('th', null, 'PHI'), el('th', null, 'type'), el('th', null, 'description'), el('th', null, 'tests'))), body));
  }

  function testsTable(n) {
    if (n.tests.length === 0) return el('p', { class: 'muted' }, 'No tests.');
    var body = el('tbody');
    n.tests.forEach(function (t) {
      body.appendChild(el('tr', { 'data-test': t.name }, el('td', { class: 'mono' }, t.name), el('td', null, badge(t.kind, 'test')), el('td', { class: 'mono' }, t.column || ''), el('td', { class: 'mono muted' }, t.file + (t.line ? ':' + t.line : ''))));
    });
    return tableWrap(el('table', { class: 'tests', 'data-testid': 'tests' }, el('thead', null, el('tr', null, el('th', null, 'test'), el('th', null, 'kind'), el('th', null, 'column'), el('th', null, 'where'))), body));
  }

  function renderNode(id) {
    var n = nodes[id];
    var ancestors = lineage.ancestorsOf(id);
    var descendants = lineage.descendantsOf(id);
    document.title = n.label + ' · ' + data.project + ' · tsform docs';
    var dl = el(
      'dl',
      { class: 'props' },
      property('relation', el('span', { class: 'mono' }, n.schema + '.' + n.identifier)),
      property('path', el('span', { class: 'mono' }, n.path)),
      n.csv_path ? property('loader', el('span', { class: 'mono' }, n.csv_path)) : null,
      n.unique_key.length ? property('unique key', el('span', { class: 'mono' }, n.unique_key.join(', '))) : null,
      n.tags.length
        ? property(
            'tags',
            n.tags.map(function (t) {
              return badge(t, 'tag');
            }),
          )
        : null,
      n.macros.length ? property('macros', el('span', { class: 'mono' }, n.macros.join(', '))) : null,
      n.vars.length ? property('vars', el('span', { class: 'mono' }, n.vars.join(', '))) : null,
    );
    var view = el(
      'article',
      { class: 'node-view', 'data-testid': 'node-view', 'data-node': id },
      el('p', { class: 'kind' }, n.kind === 'tenants' || n.kind === 'vault' ? n.kind + ' relation (built by tsform)' : n.kind),
      el('h1', { 'data-testid': 'node-title' }, n.label),
      el(
        'p',
        { class: 'badges' },
        badge('scope: ' + n.scope, 'scope scope-' + n.scope),
        badge(n.materialized, 'mat mat-' + n.materialized),
        badge('schema: ' + n.schema, 'schema'),
        n.pseudonymized ? badge('pseudonymized', 'pseudo') : null,
      ),
      n.description ? el('p', { class: 'description', 'data-testid': 'description' }, n.description) : el('p', { class: 'description muted' }, 'No description.'),
      dl,
      el('h2', null, 'Last run'),
      sections.lastRunSection(n),
      el('h2', null, 'Lineage'),
      el(
        'div',
        { class: 'neighbour-grid' },
        el('section', null, el('h3', null, 'Upstream'), neighbourList(n.parents, 'upstream')),
        el('section', null, el('h3', null, 'Downstream'), neighbourList(n.children, 'downstream')),
        el('section', null, el('h3', null, 'All upstream (' + ancestors.length + ')'), neighbourList(ancestors, 'ancestors')),
        el('section', null, el('h3', null, 'All downstream (' + descendants.length + ')'), neighbourList(descendants, 'descendants')),
      ),
      lineage.svg(ancestors.concat([id], descendants), id),
      el('h2', null, 'Columns'),
      columnsTable(n),
      el('h2', null, 'Tests'),
      testsTable(n),
      sections.sqlSection(n),
    );
    main.appendChild(view);
    lineage.fit(view.querySelector('.lineage-wrap'));
    markSelected(id);
  }

  function renderOverview() {
    document.title = data.project + ' · tsform docs';
    var count = function (kind) {
      return ids.filter(function (id) {
        return nodes[id].kind === kind;
      }).length;
    };
    var tests = ids.reduce(function (s, id) {
      return s + nodes[id].tests.length;
    }, 0);
    var models = el('tbody');
    ids
      .filter(function (id) {
        return nodes[id].kind === 'model';
      })
      .forEach(function (id) {
        var n = nodes[id];
        var run = n.last_run;
        models.appendChild(
          el(
            'tr',
            { 'data-node': id },
            el('td', null, nodeLink(id)),
            el('td', null, n.scope),
            el('td', null, n.materialized),
            el('td', { class: 'mono' }, n.schema),
            el('td', null, run ? [statusBadge(run.status), run.rows !== undefined ? ' ' + formatRows(run.rows) + ' rows' : ''] : ''),
            el('td', null, (n.description || '').split('\n')[0]),
          ),
        );
      });
    main.appendChild(
      el(
        'article',
        { class: 'overview', 'data-testid': 'overview' },
        el('h1', null, data.project),
        el('p', { class: 'muted' }, count('model') + ' models, ' + count('seed') + ' seeds, ' + count('source') + ' sources, ' + tests + ' tests, ' + data.tenants.length + ' practices (tenant column ' + data.tenant_column + '). Generated ' + data.generated_at + '.'),
        el(
          'p',
          { class: 'muted', 'data-testid': 'overview-run' },
          data.last_run ? 'Last run: ' + (data.last_run.command || 'run') + (data.last_run.finished_at ? ', finished ' + data.last_run.finished_at : '') + '. ' : 'No run recorded. ',
          'Column types: ' + (data.catalog ? data.catalog.note : 'from the yml') + '.',
        ),
        el('h2', null, 'Lineage'),
        lineage.legend(),
        lineage.svg(ids, null),
        el('h2', null, 'Models'),
        tableWrap(el('table', { class: 'models' }, el('thead', null, el('tr', null, el('th', null, 'model'), el('th', null, 'scope'), el('th', null, 'materialized'), el('th', null, 'schema'), el('th', null, 'last run'), el('th', null, 'description'))), models)),
      ),
    );
    lineage.fit(main.querySelector('.lineage-wrap'));
    markSelected(null);
  }

  function renderPractices() {
    document.title = 'Practices · ' + data.project + ' · tsform docs';
    var q = state.query;
    var hits = data.tenants.filter(function (t) {
      return tenantMatches(t, q);
    });
    var body = el('tbody');
    hits.forEach(function (t) {
      body.appendChild(
        el(
          'tr',
          { 'data-tenant': t.id },
          el('td', { class: 'mono' }, el('a', { href: href('practice/' + t.id) }, t.id)),
          el('td', null, t.name),
          el('td', null, t.timezone),
          el('td', { class: 'mono' }, t.ready_by),
          el(
            'td',
            null,
            t.tags.map(function (tag) {
              return badge(tag, 'tag');
            }),
          ),
          el('td', null, t.pool),
        ),
      );
    });
    main.appendChild(
      el(
        'article',
        { class: 'practices', 'data-testid': 'practices' },
        el('h1', null, 'Practices'),
        el('p', { class: 'muted', 'data-testid': 'practice-count' }, (q ? hits.length + ' of ' + data.tenants.length : data.tenants.length) + ' practices' + (q ? ' matching “' + q + '”' : '') + '. SLA: the prior day is ready by this local time.'),
        tableWrap(el('table', { class: 'practices-table', 'data-testid': 'practices-table' }, el('thead', null, el('tr', null, el('th', null, 'id'), el('th', null, 'name'), el('th', null, 'time zone'), el('th', null, 'SLA ready by'), el('th', null, 'tags'), el('th', null, 'pool'))), body)),
      ),
    );
    markSelected(null);
  }

  function renderPractice(id) {
    var t = tenantsById[id];
    if (!t) return renderMissing('practice/' + id);
    document.title = t.id + ' · ' + data.project + ' · tsform docs';
    var scoped = ids.filter(function (n) {
      return nodes[n].scope === 'tenant' && nodes[n].kind === 'model';
    });
    main.appendChild(
      el(
        'article',
        { class: 'practice', 'data-testid': 'practice-view', 'data-tenant': t.id },
        el('p', { class: 'kind' }, 'practice'),
        el('h1', null, t.name),
        el(
          'dl',
          { class: 'props' },
          property('id', el('span', { class: 'mono' }, t.id)),
          property('time zone', t.timezone),
          property('SLA ready by', t.ready_by + ' local'),
          property(
            'tags',
            t.tags.map(function (tag) {
              return badge(tag, 'tag');
            }),
          ),
          property('pool', t.pool),
        ),
        el('h2', null, 'Tenant-scoped models (' + scoped.length + ')'),
        el('p', { class: 'muted' }, 'Each is built per practice; this practice reads only its own rows.'),
        neighbourList(scoped, 'practice-models'),
        el('p', null, el('a', { href: '#practices' }, '← all practices')),
      ),
    );
    markSelected(null);
  }

  function renderMissing(route) {
    main.appendChild(el('article', { class: 'missing' }, el('h1', null, 'Not found'), el('p', null, 'Nothing in this project is called ', el('code', null, route), '.'), el('p', null, el('a', { href: '#' }, 'Back to the overview'))));
    markSelected(null);
  }

  function currentRoute() {
    var raw = location.hash.replace(/^#/, '');
    return raw
      .split('/')
      .map(function (part) {
        try {
          return decodeURIComponent(part);
        } catch (e) {
          return part;
        }
      })
      .join('/');
  }

  function render() {
    clear(main);
    var route = currentRoute();
    if (route === '') renderOverview();
    else if (route === 'practices') renderPractices();
    else if (route.indexOf('practice/') === 0) renderPractice(route.slice('practice/'.length));
    else if (byRoute[route]) renderNode(byRoute[route]);
    else renderMissing(route);
    main.scrollTop = 0;
    window.scrollTo(0, 0);
  }

  // ---------------------------------------------------------------- wiring

  search.addEventListener('input', function () {
    state.query = search.value.trim().toLowerCase();
    renderSidebar();
    if (currentRoute() === 'practices') render();
  });
  search.addEventListener('keydown', function (e) {
    if (e.key === 'Enter') {
      var first = document.querySelector('#sidebar li:not([hidden]) a');
      if (first) location.hash = first.getAttribute('href');
    } else if (e.key === 'Escape') {
      search.value = '';
      state.query = '';
      renderSidebar();
      if (currentRoute() === 'practices') render();
    }
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === '/' && document.activeElement !== search) {
      e.preventDefault();
      search.focus();
    }
  });
  window.addEventListener('hashchange', render);
  window.addEventListener('resize', function () {
    lineage.fit(main.querySelector('.lineage-wrap'));
  });

  renderSidebar();
  render();
  document.body.setAttribute('data-ready', 'true');
})();
