// The Diversity map's lasso (curation/ui/diversity_map.py): when points are lassoed (or box-selected) on the
// plot inside #diversity-map, hand their record ids (each point's customdata) to this hidden gr.HTML, whose
// click listener shows "Show these N in Browse". plotly_selected is plotly's event, not a Gradio one.
const send = (ids) => {
  props.value = JSON.stringify({ids: ids, nonce: Date.now()});
  trigger('click');
};
const idsOf = (event) => {
  const ids = [];
  ((event && event.points) || []).forEach((point) => {
    const data = point.customdata;
    const id = Array.isArray(data) ? data[0] : data;
    if (id !== null && id !== undefined) ids.push(Number(id));
  });
  return Array.from(new Set(ids));
};
const hook = () => {
  document.querySelectorAll('#diversity-map .js-plotly-plot').forEach((plot) => {
    if (plot.__lassoHooked || typeof plot.on !== 'function') return;
    plot.__lassoHooked = true;
    plot.on('plotly_selected', (event) => send(idsOf(event)));
    plot.on('plotly_deselect', () => send([]));
  });
};
new MutationObserver(hook).observe(document.body, {childList: true, subtree: true});
hook();
