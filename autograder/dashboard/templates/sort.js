
document.querySelectorAll("table.sortable th").forEach((th, i) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = [...body.rows], dir = th.dataset.dir === "asc" ? -1 : 1;
  th.dataset.dir = dir === 1 ? "asc" : "desc";
  const key = r => { const t = r.cells[i].dataset.value ?? r.cells[i].textContent; return isNaN(t) ? t : Number(t); };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * dir).forEach(r => body.appendChild(r));
}));
// index.html#sort=N sorts by column N on load (a link a TA can share)
const m = location.hash.match(/sort=(\d+)/);
if (m) document.querySelectorAll("table.sortable th")[Number(m[1])]?.click();
