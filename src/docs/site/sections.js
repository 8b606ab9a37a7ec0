// tsform docs: the parts of a node page that show SQL and the last run, and the table box
// every table sits in. Text goes in through dom.el only (textContent), as in app.js.
(function () {
  'use strict';

  var dom = window.TsformDocs.dom;
  var el = dom.el;
  var href = dom.href;

  /** `lastRun` is the run-level summary of docs-data.js (command, finished_at), or undefined. */
  function createSections(lastRun) {
    /** Every table scrolls inside its own box: a long name never pushes the page sideways. */
    function tableWrap(table, cls) {
      return el('div', { class: 'table-wrap' + (cls ? ' ' + cls : '') }, table);
    }

    /** SQL with line numbers (CSS counters: the numbers are not part of the text a reader copies). */
    function numberedSql(text) {
      var code = el('code');
      text.split('\n').forEach(function (line, i) {
        if (i > 0) code.appendChild(document.createTextNode('\n'));
        code.appendChild(el('span', { class: 'line' }, line));
      });
      return el('pre', { class: 'numbered' }, code);
    }

    function sqlPane(title, text, testid) {
      return el('figure', { class: 'sql-pane', 'data-testid': testid }, el('figcaption', null, title), numberedSql(text));
    }

    /** The model file beside what it compiles to; the incremental variant below, collapsed. */
    function sqlSection(n) {
      if (n.compiled_sql === undefined && n.source_sql === undefined) return null;
      return [
        el('h2', null, 'SQL'),
        el(
          'div',
          { class: 'sql-panes' },
          n.source_sql !== undefined ? sqlPane('Source: ' + n.path, n.source_sql, 'source-sql') : null,
          n.compiled_sql !== undefined ? sqlPane('Compiled (practice ids bound as $1)', n.compiled_sql, 'compiled-sql') : null,
        ),
        n.compiled_incremental_sql !== undefined
          ? el('details', { class: 'sql' }, el('summary', null, 'Compiled SQL (incremental)'), numberedSql(n.compiled_incremental_sql))
          : null,
      ];
    }

    function statusBadge(status) {
      return el('span', { class: 'status status-' + status, 'data-status': status }, status);
    }

    function formatMs(ms) {
      if (ms === undefined || ms === null) return '';
      return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
    }

    function formatRows(rows) {
      return rows === undefined || rows === null ? '' : rows.toLocaleString('en-US');
    }

    /** The node in the last run: status, counts per status, rows, time, and the practices (failures first). */
    function lastRunSection(n) {
      var run = n.last_run;
      if (!run) {
        return el('p', { class: 'muted', 'data-testid': 'last-run' }, lastRun ? 'Not in the last run (' + (lastRun.command || 'run') + ').' : 'No run recorded (target/run_results.json).');
      }
      var counts = ['success', 'error', 'skipped', 'interrupted']
        .filter(function (s) {
          return run.counts[s] > 0;
        })
        .map(function (s) {
          return run.counts[s] + ' ' + s;
        })
        .join(', ');
      var body = el('tbody');
      run.practices.forEach(function (p) {
        body.appendChild(
          el(
            'tr',
            { 'data-tenant': p.tenant },
            el('td', { class: 'mono' }, el('a', { href: href('practice/' + p.tenant) }, p.tenant)),
            el('td', null, statusBadge(p.status)),
            el('td', { class: 'num' }, formatRows(p.rows)),
            el('td', { class: 'num' }, formatMs(p.duration_ms)),
            el('td', { class: 'message' }, p.message || ''),
          ),
        );
      });
      return el(
        'section',
        { class: 'last-run', 'data-testid': 'last-run', 'data-status': run.status },
        el(
          'p',
          null,
          statusBadge(run.status),
          ' ',
          el('span', { 'data-testid': 'last-run-counts' }, counts),
          run.rows !== undefined ? el('span', { class: 'muted', 'data-testid': 'last-run-rows' }, ' · ' + formatRows(run.rows) + ' rows') : null,
          run.duration_ms !== undefined ? el('span', { class: 'muted' }, ' · ' + formatMs(run.duration_ms)) : null,
          run.failed_tests > 0 ? el('span', { class: 'status status-error' }, run.failed_tests + ' failing test(s)') : null,
          lastRun && lastRun.finished_at ? el('span', { class: 'muted' }, ' · ' + (lastRun.command || 'run') + ' finished ' + lastRun.finished_at) : null,
        ),
        run.practices.length > 0
          ? tableWrap(
              el('table', { class: 'runs', 'data-testid': 'last-run-practices' }, el('thead', null, el('tr', null, el('th', null, 'practice'), el('th', null, 'status'), el('th', null, 'rows'), el('th', null, 'time'), el('th', null, 'message'))), body),
              'scroll-y',
            )
          : null,
        run.more_practices > 0 ? el('p', { class: 'muted', 'data-testid': 'last-run-more' }, (run.practices.length > 0 ? 'and ' : '') + run.more_practices + ' practice(s) succeeded' + (run.practices.length > 0 ? '' : ' (run_results.json keeps successes as counts)')) : null,
      );
    }


    return { tableWrap: tableWrap, sqlSection: sqlSection, lastRunSection: lastRunSection, statusBadge: statusBadge, formatRows: formatRows };
  }

  window.TsformDocs.createSections = createSections;
})();
